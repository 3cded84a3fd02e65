//! A stand-in for the kubelet, so that pods run without a node or a container runtime.
//!
//! The runner registers a Node, binds every unscheduled pod of its namespace to it (the scheduler's
//! part), runs each container's `command` + `args` as a local process (the kubelet's part) and writes
//! the pod status the kubelet would: Running, then Succeeded or Failed with exit codes and termination
//! messages. **Images are ignored**: a container needs an explicit command, which runs on this machine
//! with the pod's environment. Volumes (emptyDir, configMap, secret, downwardAPI, projected with
//! service-account tokens, hostPath) are written to a temporary directory, and their mount paths are
//! rewritten to that directory in command, args, env and working directory. Container output is served
//! on the kubelet's log endpoint, so `pods/log` through the apiserver returns it. Deleting a pod sends
//! SIGTERM to its processes, then the runner completes the deletion as the kubelet does.

mod logs;
mod pod;
mod spec;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use futures::TryStreamExt;
use k8s_openapi::api::core::v1::{Binding, Node, ObjectReference, Pod};
use kube::api::{DeleteParams, ObjectMeta, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::watcher;
use kube::{Api, Client};
use tokio::task::JoinHandle;

use crate::support::cluster::certs::CertPair;
use logs::LogStore;

/// A pod's task and what stops its processes.
type Running = (JoinHandle<()>, Arc<pod::Handle>);

/// State shared by the watch loop and the pod tasks.
struct Shared {
    client: Client,
    node: String,
    logs: Arc<LogStore>,
    dir: tempfile::TempDir,
    /// Container process starts per pod name.
    executions: Mutex<BTreeMap<String, usize>>,
    /// Pods being run, by uid.
    pods: Mutex<HashMap<String, Running>>,
    /// Pods whose deletion this runner is completing, by uid.
    deleting: Mutex<HashSet<String>>,
}

impl Shared {
    fn count_execution(&self, pod: &str) {
        *self
            .executions
            .lock()
            .unwrap()
            .entry(pod.to_string())
            .or_default() += 1;
    }
}

/// Runs the pods of one namespace until dropped; dropping it kills their processes.
pub struct PodRunner {
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

impl PodRunner {
    /// Registers a Node for `namespace` and starts running its pods. `serving` is the certificate of the
    /// log endpoint; the apiserver must trust its issuer (`--kubelet-certificate-authority`).
    pub async fn start(client: Client, namespace: &str, serving: &CertPair) -> Result<PodRunner> {
        let node = format!("millrace-runner-{namespace}");
        let shared = Arc::new(Shared {
            client: client.clone(),
            node: node.clone(),
            logs: Arc::default(),
            dir: tempfile::Builder::new()
                .prefix("millrace-pods-")
                .tempdir()?,
            executions: Mutex::default(),
            pods: Mutex::default(),
            deleting: Mutex::default(),
        });
        let (port, server) =
            logs::serve(shared.logs.clone(), namespace.to_string(), serving).await?;
        register_node(&client, &node, port)
            .await
            .context("registering the runner's node")?;
        let watch = tokio::spawn(watch(shared.clone(), Api::namespaced(client, namespace)));
        Ok(PodRunner {
            shared,
            tasks: vec![server, watch],
        })
    }

    /// How many times a container process was started, per pod name (init containers and restarts count).
    pub fn executions(&self) -> BTreeMap<String, usize> {
        self.shared.executions.lock().unwrap().clone()
    }

    #[allow(
        dead_code,
        reason = "only the control-plane tests look at pod placement"
    )]
    pub fn node_name(&self) -> &str {
        &self.shared.node
    }
}

impl Drop for PodRunner {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        // Aborting a pod task drops its processes' guards, which kill them.
        for (task, _) in self.shared.pods.lock().unwrap().values() {
            task.abort();
        }
    }
}

async fn register_node(client: &Client, name: &str, port: u16) -> Result<()> {
    let nodes = Api::<Node>::all(client.clone());
    let node = Node {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some([("kubernetes.io/hostname".to_string(), name.to_string())].into()),
            ..Default::default()
        },
        ..Default::default()
    };
    match nodes.create(&PostParams::default(), &node).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => return Err(e.into()),
    }
    // The apiserver reaches the kubelet at the node's InternalIP and kubelet port.
    let status = serde_json::json!({ "status": {
        "addresses": [{ "type": "InternalIP", "address": spec::LOOPBACK }, { "type": "Hostname", "address": name }],
        "daemonEndpoints": { "kubeletEndpoint": { "Port": port } },
        "capacity": { "cpu": "8", "memory": "16Gi", "pods": "110" },
        "allocatable": { "cpu": "8", "memory": "16Gi", "pods": "110" },
        "conditions": [{
            "type": "Ready", "status": "True", "reason": "KubeletReady", "message": "millrace pod runner",
            "lastHeartbeatTime": k8s_openapi::jiff::Timestamp::now(),
            "lastTransitionTime": k8s_openapi::jiff::Timestamp::now(),
        }],
    }});
    nodes
        .patch_status(name, &PatchParams::default(), &Patch::Merge(status))
        .await?;
    Ok(())
}

async fn watch(shared: Arc<Shared>, pods: Api<Pod>) {
    let events = watcher(pods.clone(), watcher::Config::default());
    let mut events = std::pin::pin!(events);
    loop {
        match events.try_next().await {
            Ok(Some(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod))) => {
                on_pod(&shared, &pods, pod).await
            }
            Ok(Some(_)) => {}
            Ok(None) => return,
            Err(e) => {
                eprintln!("pod runner: watch error: {e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

async fn on_pod(shared: &Arc<Shared>, pods: &Api<Pod>, mut pod: Pod) {
    let (Some(name), Some(uid)) = (pod.metadata.name.clone(), pod.metadata.uid.clone()) else {
        return;
    };
    let spec = pod.spec.get_or_insert_with(Default::default);
    let ours = match spec.node_name.as_deref() {
        None | Some("") => false,
        Some(node) if node == shared.node => true,
        Some(_) => return,
    };
    if pod.metadata.deletion_timestamp.is_some() {
        if ours && shared.deleting.lock().unwrap().insert(uid.clone()) {
            tokio::spawn(complete_deletion(
                shared.clone(),
                pods.clone(),
                name,
                uid,
                pod.metadata.deletion_grace_period_seconds,
            ));
        }
        return;
    }
    let terminal = matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    );
    if terminal || shared.pods.lock().unwrap().contains_key(&uid) {
        return;
    }
    if !ours {
        if let Err(e) = bind(pods, &name, &shared.node).await {
            eprintln!("pod runner: cannot bind pod {name}: {e}");
            return;
        }
        spec.node_name = Some(shared.node.clone());
    }
    let handle = Arc::new(pod::Handle::default());
    let task = tokio::spawn(pod::run(shared.clone(), pod, handle.clone()));
    shared.pods.lock().unwrap().insert(uid, (task, handle));
}

/// The scheduler's part: assigns the pod to the runner's node.
async fn bind(pods: &Api<Pod>, name: &str, node: &str) -> kube::Result<()> {
    let binding = Binding {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        target: ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Node".into()),
            name: Some(node.into()),
            ..Default::default()
        },
    };
    pods.create_subresource::<_, serde_json::Value>(
        "binding",
        name,
        &PostParams::default(),
        &binding,
    )
    .await?;
    Ok(())
}

/// The kubelet's part of a graceful deletion: stop the containers within the grace period, then remove
/// the pod for good (a pod bound to a node stays Terminating until its kubelet does this).
async fn complete_deletion(
    shared: Arc<Shared>,
    pods: Api<Pod>,
    name: String,
    uid: String,
    grace: Option<i64>,
) {
    let running = shared.pods.lock().unwrap().remove(&uid);
    if let Some((mut task, handle)) = running {
        handle.stop();
        let grace = Duration::from_secs(grace.unwrap_or(30).clamp(0, 30) as u64);
        if tokio::time::timeout(grace, &mut task).await.is_err() {
            task.abort();
        }
    }
    let params = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(Preconditions {
            uid: Some(uid),
            resource_version: None,
        }),
        ..Default::default()
    };
    match pods.delete(&name, &params).await {
        Ok(_) | Err(kube::Error::Api(_)) => {}
        Err(e) => eprintln!("pod runner: cannot delete pod {name}: {e}"),
    }
}
