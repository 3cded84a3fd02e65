//! python3 steps: `main(**declared args)` inside the embedded `wrapper.py`.

use super::{Launch, Toolchain, write_file};
use crate::exec::AttemptError;
use serde_json::{Map, Value};
use std::path::Path;

/// Run as `python3 -c WRAPPER DIR`: it reads `DIR/main.py` and `DIR/args.json` and writes
/// `DIR/result.json` (its stack trimming relies on being compiled from `<string>`).
pub const WRAPPER: &str = include_str!("wrapper.py");

pub(super) fn prepare(
    content: &str,
    args: &Map<String, Value>,
    control: &Path,
    toolchain: &Toolchain,
) -> Result<Launch, AttemptError> {
    write_file(control, "main.py", content.as_bytes())?;
    write_file(
        control,
        "args.json",
        Value::Object(args.clone()).to_string().as_bytes(),
    )?;
    Ok(Launch {
        program: toolchain.python.clone(),
        args: vec!["-c".into(), WRAPPER.into(), control.into()],
        // Unbuffered, so that prints show in the live view as they happen.
        env: vec![("PYTHONUNBUFFERED".into(), "1".into())],
    })
}
