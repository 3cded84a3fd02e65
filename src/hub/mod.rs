//! The bundled hub: scripts that `script` steps reach with `hub/<name>` paths, embedded in the
//! binary. Each script's header documents its inputs and result.

use crate::exec::Language;

/// A bundled script.
pub struct HubScript {
    pub name: &'static str,
    pub language: Language,
    pub content: &'static str,
}

pub const SCRIPTS: &[HubScript] = &[
    HubScript {
        name: "http_request",
        language: Language::Python3,
        content: include_str!("http_request.py"),
    },
    HubScript {
        name: "slack_post",
        language: Language::Python3,
        content: include_str!("slack_post.py"),
    },
];

/// The script for a `hub/<name>` path, if it is bundled.
pub fn find(path: &str) -> Option<&'static HubScript> {
    let name = path.strip_prefix("hub/")?;
    SCRIPTS.iter().find(|script| script.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_bundled_scripts_by_hub_path() {
        assert_eq!(find("hub/http_request").unwrap().name, "http_request");
        assert!(find("hub/nope").is_none());
        assert!(find("f/http_request").is_none());
    }
}
