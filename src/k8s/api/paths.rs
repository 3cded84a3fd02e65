//! Which Flow or Script a Windmill path stands for, the same rule for both in a namespace: the
//! object annotated `millrace.dev/path: <path>` is the one for that path; failing that, the
//! object named by the path's last segment made DNS-safe (`f/team/Daily_Report` →
//! `daily-report`), unless that object is annotated with another path. Pure: whoever lists the
//! objects (the operator when a run begins, a tool that applies files) asks this which one counts.

use super::naming::dns_label;

/// Annotation that ties an object to a Windmill path, whatever its name.
pub const PATH_ANNOTATION: &str = "millrace.dev/path";

/// The objects of one kind in the run's namespace, by name, with their path annotation.
pub struct Catalog<'a, T> {
    pub kind: &'static str,
    pub namespace: &'a str,
    pub objects: Vec<Entry<'a, T>>,
}

pub struct Entry<'a, T> {
    pub name: &'a str,
    pub path: Option<&'a str>,
    /// The spec, or why the object cannot be read.
    pub spec: Result<&'a T, &'a str>,
}

/// The object found for a path: its name and spec.
pub struct Chosen<'a, T> {
    pub name: &'a str,
    pub spec: &'a T,
}

impl<'a, T> Catalog<'a, T> {
    /// The object for `path` by the path rule, or why there is none (or why it cannot be used).
    pub fn find(&self, path: &str) -> Result<Chosen<'a, T>, String> {
        let entry = self.choose(path)?;
        match entry.spec {
            Ok(spec) => Ok(Chosen {
                name: entry.name,
                spec,
            }),
            Err(problem) => Err(format!(
                "{kind} {name} (for path `{path}`) cannot be read: {problem}",
                kind = self.kind,
                name = entry.name,
            )),
        }
    }

    fn choose(&self, path: &str) -> Result<&Entry<'a, T>, String> {
        let claimed: Vec<_> = self
            .objects
            .iter()
            .filter(|e| e.path == Some(path))
            .collect();
        match claimed.as_slice() {
            [one] => return Ok(one),
            [] => {}
            several => {
                let names: Vec<_> = several.iter().map(|e| e.name).collect();
                return Err(format!(
                    "{kind}s {names} in namespace {ns} all have annotation {PATH_ANNOTATION}: {path}; keep it on one",
                    kind = self.kind,
                    names = names.join(", "),
                    ns = self.namespace,
                ));
            }
        }
        let name = object_name(path);
        self.objects
            .iter()
            .find(|e| e.path.is_none() && e.name == name)
            .ok_or_else(|| {
                format!(
                    "no {kind} for path `{path}` in namespace {ns}: looked for a {kind} annotated {PATH_ANNOTATION}: {path}, then for a {kind} named `{name}`",
                    kind = self.kind,
                    ns = self.namespace,
                )
            })
    }
}

/// The object name a path falls back to: its last segment, DNS-safe.
pub fn object_name(path: &str) -> String {
    dns_label(path.rsplit('/').next().unwrap_or(path))
}
