//! Turns a pod spec into what a local process needs: volume contents on disk, the environment, and
//! command, args and working directory with every mount path rewritten to where its volume lives.
//! Path rewriting stands in for a mount namespace, so the runner needs no privileges.

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use k8s_openapi::ByteString;
use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, KeyToPath, ObjectFieldSelector, Pod, Secret, ServiceAccount, Volume,
};
use kube::api::PostParams;
use kube::{Api, Client};

/// The pod's IP and the node's: the runner's processes share the host's loopback network.
pub const LOOPBACK: &str = "127.0.0.1";

const DEFAULT_MODE: i32 = 0o644;

/// Writes every volume of `pod` under `dir`, returning the directory of each volume by name.
pub async fn materialise_volumes(
    client: &Client,
    pod: &Pod,
    dir: &Path,
) -> Result<HashMap<String, PathBuf>> {
    let spec = pod.spec.as_ref().context("pod without spec")?;
    let mut dirs = HashMap::new();
    for volume in spec.volumes.iter().flatten() {
        let path = match &volume.host_path {
            Some(host) => PathBuf::from(&host.path),
            None => {
                let path = dir.join(&volume.name);
                std::fs::create_dir_all(&path)?;
                fill(client, pod, volume, &path)
                    .await
                    .with_context(|| format!("volume {}", volume.name))?;
                path
            }
        };
        dirs.insert(volume.name.clone(), path);
    }
    Ok(dirs)
}

async fn fill(client: &Client, pod: &Pod, volume: &Volume, dir: &Path) -> Result<()> {
    let ns = namespace(pod);
    if volume.empty_dir.is_some() {
        return Ok(());
    }
    if let Some(cm) = &volume.config_map {
        let data = config_map(client, ns, &cm.name, cm.optional).await?;
        return write_keys(dir, data, cm.items.as_deref(), cm.default_mode, cm.optional);
    }
    if let Some(s) = &volume.secret {
        let name = s.secret_name.as_deref().unwrap_or_default();
        let data = secret(client, ns, name, s.optional).await?;
        return write_keys(dir, data, s.items.as_deref(), s.default_mode, s.optional);
    }
    if let Some(d) = &volume.downward_api {
        for item in d.items.iter().flatten() {
            let field = item
                .field_ref
                .as_ref()
                .context("downwardAPI supports fieldRef only")?;
            write_file(
                dir,
                &item.path,
                field_value(pod, field)?.as_bytes(),
                item.mode.or(d.default_mode),
            )?;
        }
        return Ok(());
    }
    if let Some(p) = &volume.projected {
        for source in p.sources.iter().flatten() {
            if let Some(cm) = &source.config_map {
                let data = config_map(client, ns, &cm.name, cm.optional).await?;
                write_keys(dir, data, cm.items.as_deref(), p.default_mode, cm.optional)?;
            } else if let Some(s) = &source.secret {
                let data = secret(client, ns, &s.name, s.optional).await?;
                write_keys(dir, data, s.items.as_deref(), p.default_mode, s.optional)?;
            } else if let Some(d) = &source.downward_api {
                for item in d.items.iter().flatten() {
                    let field = item
                        .field_ref
                        .as_ref()
                        .context("downwardAPI supports fieldRef only")?;
                    write_file(
                        dir,
                        &item.path,
                        field_value(pod, field)?.as_bytes(),
                        item.mode.or(p.default_mode),
                    )?;
                }
            } else if let Some(t) = &source.service_account_token {
                let token =
                    service_account_token(client, pod, t.audience.clone(), t.expiration_seconds)
                        .await?;
                write_file(dir, &t.path, token.as_bytes(), p.default_mode)?;
            } else {
                bail!("unsupported projected volume source");
            }
        }
        return Ok(());
    }
    bail!(
        "unsupported volume type (the pod runner handles emptyDir, configMap, secret, downwardAPI, projected and hostPath)"
    )
}

async fn config_map(
    client: &Client,
    ns: &str,
    name: &str,
    optional: Option<bool>,
) -> Result<BTreeMap<String, Vec<u8>>> {
    match Api::<ConfigMap>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await?
    {
        Some(cm) => Ok(text(cm.data).chain(binary(cm.binary_data)).collect()),
        None => optional_missing("configmap", name, optional),
    }
}

async fn secret(
    client: &Client,
    ns: &str,
    name: &str,
    optional: Option<bool>,
) -> Result<BTreeMap<String, Vec<u8>>> {
    match Api::<Secret>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await?
    {
        Some(s) => Ok(binary(s.data).chain(text(s.string_data)).collect()),
        None => optional_missing("secret", name, optional),
    }
}

/// Text entries of a ConfigMap or Secret as file contents.
fn text(entries: Option<BTreeMap<String, String>>) -> impl Iterator<Item = (String, Vec<u8>)> {
    let entries = entries.into_iter().flatten();
    entries.map(|(k, v)| (k, v.into_bytes()))
}

/// Binary entries of a ConfigMap or Secret as file contents.
fn binary(
    entries: Option<BTreeMap<String, ByteString>>,
) -> impl Iterator<Item = (String, Vec<u8>)> {
    entries.into_iter().flatten().map(|(k, v)| (k, v.0))
}

fn optional_missing(
    kind: &str,
    name: &str,
    optional: Option<bool>,
) -> Result<BTreeMap<String, Vec<u8>>> {
    if optional == Some(true) {
        Ok(BTreeMap::new())
    } else {
        bail!("{kind} {name} not found")
    }
}

/// A token for the pod's service account, bound to the pod, as the kubelet requests it.
async fn service_account_token(
    client: &Client,
    pod: &Pod,
    audience: Option<String>,
    expiration_seconds: Option<i64>,
) -> Result<String> {
    let spec = pod.spec.as_ref().context("pod without spec")?;
    let account = spec.service_account_name.as_deref().unwrap_or("default");
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            audiences: audience.map(|a| vec![a]),
            expiration_seconds: expiration_seconds.or(Some(3600)),
            bound_object_ref: Some(BoundObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                name: pod.metadata.name.clone(),
                uid: pod.metadata.uid.clone(),
            }),
        }),
        ..Default::default()
    };
    let api = Api::<ServiceAccount>::namespaced(client.clone(), namespace(pod));
    let response = api
        .create_token_request(account, &PostParams::default(), &request)
        .await?;
    response
        .status
        .and_then(|s| s.token)
        .context("token request without a token")
}

fn write_keys(
    dir: &Path,
    data: BTreeMap<String, Vec<u8>>,
    items: Option<&[KeyToPath]>,
    default_mode: Option<i32>,
    optional: Option<bool>,
) -> Result<()> {
    let Some(items) = items else {
        for (key, value) in &data {
            write_file(dir, key, value, default_mode)?;
        }
        return Ok(());
    };
    for item in items {
        match data.get(&item.key) {
            Some(value) => write_file(dir, &item.path, value, item.mode.or(default_mode))?,
            None if optional == Some(true) => {}
            None => bail!("key {} not found", item.key),
        }
    }
    Ok(())
}

fn write_file(dir: &Path, relative: &str, contents: &[u8], mode: Option<i32>) -> Result<()> {
    if Path::new(relative).is_absolute() || relative.split('/').any(|c| c == "..") {
        bail!("volume item path {relative:?} escapes the volume");
    }
    let path = dir.join(relative);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&path, contents)?;
    let mode = mode.unwrap_or(DEFAULT_MODE) as u32 & 0o777;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))?;
    Ok(())
}

fn namespace(pod: &Pod) -> &str {
    pod.metadata.namespace.as_deref().unwrap_or("default")
}

/// The downward API: the fields kubelet resolves for env vars and downwardAPI volumes.
fn field_value(pod: &Pod, field: &ObjectFieldSelector) -> Result<String> {
    let meta = &pod.metadata;
    let spec = pod.spec.as_ref();
    let path = field.field_path.as_str();
    let quoted = |map: &Option<BTreeMap<String, String>>| {
        let lines: Vec<String> = map
            .iter()
            .flatten()
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect();
        lines.join("\n")
    };
    let keyed = |prefix: &str, map: &Option<BTreeMap<String, String>>| {
        let key = path.strip_prefix(prefix)?.strip_suffix("']")?;
        Some(
            map.as_ref()
                .and_then(|m| m.get(key))
                .cloned()
                .unwrap_or_default(),
        )
    };
    let value = match path {
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => namespace(pod).to_string(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        "metadata.labels" => quoted(&meta.labels),
        "metadata.annotations" => quoted(&meta.annotations),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
        "spec.serviceAccountName" => spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_default(),
        "status.hostIP" | "status.hostIPs" | "status.podIP" | "status.podIPs" => {
            LOOPBACK.to_string()
        }
        _ => keyed("metadata.labels['", &meta.labels)
            .or_else(|| keyed("metadata.annotations['", &meta.annotations))
            .ok_or_else(|| anyhow!("unsupported fieldRef {path}"))?,
    };
    Ok(value)
}

/// What a container needs to start as a local process.
pub struct Launch {
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: PathBuf,
    pub termination_log: PathBuf,
}

/// Resolves the container's command, environment and paths; `dir` is a fresh directory for this run.
pub async fn launch(
    client: &Client,
    pod: &Pod,
    container: &Container,
    volumes: &HashMap<String, PathBuf>,
    dir: &Path,
) -> Result<Launch> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let termination_log = dir.join("termination-log");
    std::fs::write(&termination_log, "")?;
    let mut mounts = vec![(
        container
            .termination_message_path
            .clone()
            .unwrap_or_else(|| "/dev/termination-log".into()),
        termination_log.clone(),
    )];
    for mount in container.volume_mounts.iter().flatten() {
        let base = volumes
            .get(&mount.name)
            .with_context(|| format!("no volume {}", mount.name))?;
        let path = match mount.sub_path.as_deref().filter(|s| !s.is_empty()) {
            Some(sub) => {
                let path = base.join(sub);
                if !path.exists() {
                    std::fs::create_dir_all(&path)?;
                }
                path
            }
            None => base.clone(),
        };
        mounts.push((mount.mount_path.trim_end_matches('/').to_string(), path));
    }
    // Longest first, so /data/cache wins over /data.
    mounts.sort_by_key(|(m, _)| std::cmp::Reverse(m.len()));

    let env = environment(client, pod, container).await?;
    let vars: HashMap<&str, &str> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let argv: Vec<String> = container
        .command
        .iter()
        .flatten()
        .chain(container.args.iter().flatten())
        .map(|a| rewrite(&expand(a, &vars), &mounts))
        .collect();
    if container.command.as_ref().is_none_or(|c| c.is_empty()) {
        bail!(
            "container {} has no command: the pod runner ignores images, so it cannot use an entrypoint",
            container.name
        );
    }
    let env = env
        .iter()
        .map(|(k, v)| (k.clone(), rewrite(v, &mounts)))
        .collect();
    let cwd = match container.working_dir.as_deref() {
        Some(wd) => PathBuf::from(rewrite(wd, &mounts)),
        None => dir.join("workdir"),
    };
    // A working directory inside the image does not exist here; fall back to a scratch directory.
    let cwd = if cwd.is_dir() {
        cwd
    } else {
        dir.join("workdir")
    };
    std::fs::create_dir_all(&cwd)?;
    Ok(Launch {
        argv,
        env,
        cwd,
        termination_log,
    })
}

/// envFrom, then env (later entries win), with `$(VAR)` references to earlier variables expanded.
async fn environment(
    client: &Client,
    pod: &Pod,
    container: &Container,
) -> Result<Vec<(String, String)>> {
    let ns = namespace(pod);
    let mut env: Vec<(String, String)> = Vec::new();
    let set = |env: &mut Vec<(String, String)>, key: String, value: String| {
        env.retain(|(k, _)| *k != key);
        env.push((key, value));
    };
    for from in container.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        let data = if let Some(cm) = &from.config_map_ref {
            config_map(client, ns, &cm.name, cm.optional).await?
        } else if let Some(s) = &from.secret_ref {
            secret(client, ns, &s.name, s.optional).await?
        } else {
            continue;
        };
        for (key, value) in data {
            set(
                &mut env,
                format!("{prefix}{key}"),
                String::from_utf8_lossy(&value).into_owned(),
            );
        }
    }
    for var in container.env.iter().flatten() {
        let value = match &var.value_from {
            None => {
                let vars: HashMap<&str, &str> =
                    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                expand(var.value.as_deref().unwrap_or_default(), &vars)
            }
            Some(from) => {
                if let Some(field) = &from.field_ref {
                    field_value(pod, field)?
                } else if let Some(key) = &from.config_map_key_ref {
                    let data = config_map(client, ns, &key.name, key.optional).await?;
                    match data.get(&key.key) {
                        Some(v) => String::from_utf8_lossy(v).into_owned(),
                        None if key.optional == Some(true) => continue,
                        None => bail!("key {} not found in configmap {}", key.key, key.name),
                    }
                } else if let Some(key) = &from.secret_key_ref {
                    let data = secret(client, ns, &key.name, key.optional).await?;
                    match data.get(&key.key) {
                        Some(v) => String::from_utf8_lossy(v).into_owned(),
                        None if key.optional == Some(true) => continue,
                        None => bail!("key {} not found in secret {}", key.key, key.name),
                    }
                } else {
                    bail!("env {}: unsupported valueFrom", var.name);
                }
            }
        };
        set(&mut env, var.name.clone(), value);
    }
    Ok(env)
}

/// Kubernetes variable references: `$(NAME)` becomes the value if NAME is defined, `$$` becomes `$`.
fn expand(s: &str, vars: &HashMap<&str, &str>) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        if let Some(after) = rest.strip_prefix("$$") {
            out.push('$');
            rest = after;
        } else if let Some(name) = rest
            .strip_prefix("$(")
            .and_then(|r| r.split_once(')'))
            .map(|(n, _)| n)
            && let Some(value) = vars.get(name)
        {
            out.push_str(value);
            rest = &rest[name.len() + 3..];
        } else {
            out.push('$');
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
    out
}

/// Replaces each mount path that appears as a whole path (not inside a longer one) with its directory.
fn rewrite(s: &str, mounts: &[(String, PathBuf)]) -> String {
    let path_char = |c: char| c.is_ascii_alphanumeric() || "/._-".contains(c);
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    'scan: while i < s.len() {
        let before_ok = s[..i].chars().next_back().is_none_or(|c| !path_char(c));
        if before_ok {
            for (mount, dir) in mounts {
                if mount.is_empty() || !s[i..].starts_with(mount.as_str()) {
                    continue;
                }
                let after = s[i + mount.len()..].chars().next();
                if after.is_none_or(|c| c == '/' || !path_char(c)) {
                    out.push_str(&dir.to_string_lossy());
                    i += mount.len();
                    continue 'scan;
                }
            }
        }
        let c = s[i..].chars().next().unwrap();
        out.push(c);
        i += c.len_utf8();
    }
    out
}

#[cfg(test)]
mod tests {
    #[allow(
        unused_imports,
        reason = "a bench compiles this module without its #[test] functions"
    )]
    use super::*;

    #[test]
    fn expands_references() {
        let vars = HashMap::from([("A", "1")]);
        assert_eq!(expand("x$(A)y $(B) $$(A) $", &vars), "x1y $(B) $(A) $");
    }

    #[test]
    fn rewrites_whole_paths_only() {
        let mounts = vec![
            ("/data/x".to_string(), PathBuf::from("/t/x")),
            ("/data".to_string(), PathBuf::from("/t/d")),
        ];
        assert_eq!(
            rewrite("cat /data/x/f /data/y /database a/data --p=/data", &mounts),
            "cat /t/x/f /t/d/y /database a/data --p=/t/d"
        );
    }
}
