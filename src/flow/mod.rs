//! The OpenFlow model: types, loading from files, validation.

pub mod load;
pub mod model;
pub mod windmill;
mod yaml;

pub use load::{LoadError, LoadedFlow, load_path, parse_str};
pub use model::*;
