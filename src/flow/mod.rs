//! The OpenFlow model: types, loading from files, validation.

pub mod inputs;
pub mod load;
pub mod model;
pub mod problem;
mod references;
pub mod validate;
mod walk;
pub mod windmill;
pub mod yaml;

pub use inputs::{InputProblem, prepare_inputs};
pub use load::{LoadError, LoadedFlow, load_path, parse_str, resolved_document};
pub use model::*;
pub use problem::{ModulePath, Problem};
pub use validate::validate;
