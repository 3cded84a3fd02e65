//! The OpenFlow model: types, loading from files, validation.

pub mod model;

pub use model::*;
