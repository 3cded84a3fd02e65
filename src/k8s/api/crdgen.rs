//! The CustomResourceDefinitions as YAML: what `millrace crds` prints and `crds/` holds.

use super::{Flow, FlowRun, GitSource, Schedule, Script};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

/// Every CRD of the group, in a stable order.
pub fn all() -> Vec<CustomResourceDefinition> {
    vec![
        Flow::crd(),
        FlowRun::crd(),
        Schedule::crd(),
        Script::crd(),
        GitSource::crd(),
    ]
}

/// File name under `crds/` for a CRD: `<plural>.<group>.yaml`.
pub fn file_name(crd: &CustomResourceDefinition) -> String {
    format!("{}.yaml", crd.metadata.name.as_deref().unwrap_or("unnamed"))
}

/// One CRD as a YAML document.
pub fn to_yaml(crd: &CustomResourceDefinition) -> Result<String, serde_yaml_ng::Error> {
    serde_yaml_ng::to_string(crd)
}

/// All CRDs as one multi-document YAML stream.
pub fn render_all() -> Result<String, serde_yaml_ng::Error> {
    let docs = all().iter().map(to_yaml).collect::<Result<Vec<_>, _>>()?;
    Ok(docs.iter().map(|d| format!("---\n{d}")).collect())
}

/// Writes one file per CRD into `dir` and removes stale `*.yaml` files there, so the directory
/// is exactly what the code generates.
pub fn write_dir(dir: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let crds = all();
    let wanted: Vec<String> = crds.iter().map(file_name).collect();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name.ends_with(".yaml") && !wanted.iter().any(|w| w == name) {
            std::fs::remove_file(&path)?;
        }
    }
    for crd in &crds {
        let yaml = to_yaml(crd).map_err(std::io::Error::other)?;
        std::fs::write(dir.join(file_name(crd)), yaml)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `crds/` is generated; this fails when the code changed and the CRDs were not written again.
    #[test]
    fn crds_directory_matches_the_code() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("crds");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .expect("crds/ exists")
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".yaml"))
            .collect();
        on_disk.sort();
        let mut expected: Vec<String> = all().iter().map(file_name).collect();
        expected.sort();
        assert_eq!(
            on_disk, expected,
            "crds/ has other files than the code generates: run `millrace crds --out crds --out charts/millrace/crds`"
        );
        for crd in all() {
            let file = dir.join(file_name(&crd));
            let text = std::fs::read_to_string(&file).unwrap();
            assert!(
                text == to_yaml(&crd).unwrap(),
                "{} differs from the code: run `millrace crds --out crds --out charts/millrace/crds`",
                file.display()
            );
        }
    }

    /// The apiserver prunes fields a structural schema does not declare; free-form JSON must say so.
    #[test]
    fn arbitrary_json_fields_are_preserved_by_the_schema() {
        let schema_of = |crd: CustomResourceDefinition| {
            serde_json::to_value(&crd.spec.versions[0].schema).unwrap()["openAPIV3Schema"].clone()
        };
        let flow = schema_of(Flow::crd());
        let run = schema_of(FlowRun::crd());
        let schedule = schema_of(Schedule::crd());
        let preserved = [
            &flow["properties"]["spec"]["properties"]["value"],
            &flow["properties"]["spec"]["properties"]["schema"],
            &run["properties"]["spec"]["properties"]["inputs"],
            &run["properties"]["spec"]["properties"]["flow"]["properties"]["value"],
            &run["properties"]["status"]["properties"]["result"],
            &run["properties"]["status"]["properties"]["steps"]["items"]["properties"]["result"],
            &schedule["properties"]["spec"]["properties"]["inputs"],
            &schedule["properties"]["spec"]["properties"]["onFailure"]["properties"]["inputs"],
        ];
        for field in preserved {
            assert_eq!(
                field["x-kubernetes-preserve-unknown-fields"], true,
                "{field}"
            );
        }
    }
}
