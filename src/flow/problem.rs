//! What validation reports: a problem, the module it is in and the field it is about.

use std::fmt;

/// Where a module sits in a flow, as the ids from the top level down (`loop_a/b`).
///
/// A module without an id is named by its position in its parent (`modules[2]`), so a path stays
/// readable when ids are missing. The empty path means the flow itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ModulePath(Vec<String>);

impl ModulePath {
    /// The path of the flow document itself.
    pub fn flow() -> Self {
        Self::default()
    }

    /// The path of a child: `label` is the child's id, or its position when it has none.
    pub fn child(&self, label: impl Into<String>) -> Self {
        let mut segments = self.0.clone();
        segments.push(label.into());
        Self(segments)
    }
}

impl fmt::Display for ModulePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("flow")
        } else {
            f.write_str(&self.0.join("/"))
        }
    }
}

/// One thing wrong with a flow. `field` is relative to the module (`value.input_transforms.x`),
/// or to the document when `path` is the flow itself (`schema`, `value.early_return`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: ModulePath,
    pub field: String,
    pub message: String,
}

impl Problem {
    pub fn new(path: &ModulePath, field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.clone(),
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.path, self.field, self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_ids_joined_by_slashes() {
        let path = ModulePath::flow().child("loop_a").child("b");
        let problem = Problem::new(
            &path,
            "value.input_transforms.x",
            "expression does not parse",
        );
        assert_eq!(
            problem.to_string(),
            "loop_a/b: value.input_transforms.x: expression does not parse"
        );
    }

    #[test]
    fn the_empty_path_is_the_flow() {
        let problem = Problem::new(&ModulePath::flow(), "schema", "not a JSON Schema");
        assert_eq!(problem.to_string(), "flow: schema: not a JSON Schema");
    }
}
