//! What a file is by its path in a Windmill workspace (or next to one): decided by name alone.

/// The part a file plays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role<'a> {
    /// Not read; the reason is listed.
    Ignored(&'static str),
    /// Inside a flow folder (`x.flow/` or `x__flow/`), the folder's path from the synced directory.
    InFlowFolder { folder: &'a str },
    /// `name.script.yaml`: a script's metadata; the code is in `name.<ext>` beside it.
    ScriptMeta,
    /// `name.schedule.yaml`: a Windmill schedule.
    Schedule,
    /// Any other YAML file: Kubernetes-style manifests.
    Manifests,
    /// Anything else: used when a `.script.yaml` refers to it.
    Code,
}

const FLOW_FOLDER: [&str; 2] = [".flow", "__flow"];
const APP_FOLDER: [&str; 4] = [".app", "__app", ".raw_app", "__raw_app"];

/// Windmill files Millrace has no use for, by ending, and what they are.
const WINDMILL_ENDINGS: [(&str, &str); 12] = [
    (
        ".resource.yaml",
        "a Windmill resource: Millrace reads resources from Secrets",
    ),
    (
        ".resource.json",
        "a Windmill resource: Millrace reads resources from Secrets",
    ),
    (
        ".variable.yaml",
        "a Windmill variable: Millrace reads variables from Secrets",
    ),
    (
        ".variable.json",
        "a Windmill variable: Millrace reads variables from Secrets",
    ),
    (
        ".resource-type.yaml",
        "a Windmill resource type: not used by Millrace",
    ),
    (
        ".resource-type.json",
        "a Windmill resource type: not used by Millrace",
    ),
    ("_trigger.yaml", "a Windmill trigger: not used by Millrace"),
    ("_trigger.json", "a Windmill trigger: not used by Millrace"),
    (".user.yaml", "a Windmill user: not used by Millrace"),
    (".group.yaml", "a Windmill group: not used by Millrace"),
    (".app.yaml", "a Windmill app: Millrace does not run apps"),
    (".app.json", "a Windmill app: Millrace does not run apps"),
];

/// Windmill files Millrace has no use for, by name.
const WINDMILL_NAMES: [(&str, &str); 6] = [
    (
        "folder.meta.yaml",
        "Windmill folder settings: not used by Millrace",
    ),
    (
        "folder.meta.json",
        "Windmill folder settings: not used by Millrace",
    ),
    ("wmill.yaml", "Windmill CLI settings: not used by Millrace"),
    (
        "wmill-lock.yaml",
        "the Windmill CLI's lock file: not used by Millrace",
    ),
    (
        "settings.yaml",
        "Windmill workspace settings: not used by Millrace",
    ),
    (
        "encryption_key.yaml",
        "a Windmill workspace key: not used by Millrace",
    ),
];

/// The role of `relative`, a path from the synced directory.
pub fn role(relative: &str) -> Role<'_> {
    let segments: Vec<&str> = relative.split('/').collect();
    let (name, dirs) = segments
        .split_last()
        .expect("split yields one segment at least");
    if segments.iter().any(|s| s.starts_with('.')) {
        return Role::Ignored("hidden (a name on its path starts with a dot)");
    }
    let mut end = 0;
    for dir in dirs {
        end += dir.len() + 1;
        if APP_FOLDER.iter().any(|suffix| dir.ends_with(suffix)) {
            return Role::Ignored("part of a Windmill app: Millrace does not run apps");
        }
        if FLOW_FOLDER.iter().any(|suffix| dir.ends_with(suffix)) {
            return Role::InFlowFolder {
                folder: &relative[..end - 1],
            };
        }
    }
    if [".script.yaml", ".script.yml", ".script.json"]
        .iter()
        .any(|e| name.ends_with(e))
    {
        return Role::ScriptMeta;
    }
    if [".schedule.yaml", ".schedule.yml", ".schedule.json"]
        .iter()
        .any(|e| name.ends_with(e))
    {
        return Role::Schedule;
    }
    if let Some((_, reason)) = WINDMILL_NAMES.iter().find(|(n, _)| n == name) {
        return Role::Ignored(reason);
    }
    if let Some((_, reason)) = WINDMILL_ENDINGS.iter().find(|(e, _)| name.ends_with(e)) {
        return Role::Ignored(reason);
    }
    if name.ends_with(".yaml") || name.ends_with(".yml") {
        return Role::Manifests;
    }
    Role::Code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windmill_files_have_their_roles() {
        assert_eq!(
            role("f/reports/daily.flow/flow.yaml"),
            Role::InFlowFolder {
                folder: "f/reports/daily.flow"
            }
        );
        assert_eq!(
            role("f/reports/old__flow/a.inline_script.py"),
            Role::InFlowFolder {
                folder: "f/reports/old__flow"
            }
        );
        assert_eq!(role("f/reports/greet.script.yaml"), Role::ScriptMeta);
        assert_eq!(role("f/reports/greet.py"), Role::Code);
        assert_eq!(role("f/reports/nightly.schedule.yaml"), Role::Schedule);
        assert_eq!(role("deploy/flows.yaml"), Role::Manifests);
        assert_eq!(role("README.md"), Role::Code);
    }

    #[test]
    fn files_millrace_does_not_use_are_ignored_with_a_reason() {
        for path in [
            "f/db/main.resource.yaml",
            "f/db/token.variable.yaml",
            "f/db/folder.meta.yaml",
            "wmill.yaml",
            "wmill-lock.yaml",
            "f/hooks/on_push.http_trigger.yaml",
            "f/ui/dash.app/app.yaml",
            "f/ui/dash__raw_app/index.tsx",
            "c_custom.resource-type.yaml",
            ".github/workflows/ci.yaml",
            "f/x/.hidden.yaml",
        ] {
            assert!(
                matches!(role(path), Role::Ignored(_)),
                "{path}: {:?}",
                role(path)
            );
        }
    }
}
