//! Runs one pod's containers as local processes, in the kubelet's order (init containers one by one,
//! then the others together, restarted per restartPolicy), and reports progress in the pod's status.

use std::collections::{HashMap, HashSet};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateRunning, ContainerStateTerminated,
    ContainerStateWaiting, ContainerStatus, HostIP, Pod, PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::{Patch, PatchParams};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use super::Shared;
use super::logs::{ContainerLog, Stream};
use super::spec::{self, LOOPBACK, Launch};
use crate::support::cluster::process::{isolate, signal_group};

/// A termination message holds at most 4 KiB, as on a real node.
const MAX_MESSAGE: usize = 4096;

/// What deletion of the pod needs to reach: its live process groups.
#[derive(Default)]
pub struct Handle {
    stopping: AtomicBool,
    groups: Mutex<HashSet<u32>>,
}

impl Handle {
    /// Sends SIGTERM to every running container and keeps stopped ones from restarting.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        for group in self.groups.lock().unwrap().iter() {
            signal_group(*group, libc::SIGTERM);
        }
    }

    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }
}

/// Kills a container's process group if its task is dropped (runner dropped, test over) mid-run.
struct GroupGuard(Option<u32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            signal_group(pid, libc::SIGKILL);
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Restart {
    Never,
    OnFailure,
    Always,
}

/// The pod's status as this runner owns it, written whole after every change.
struct StatusWriter {
    api: Api<Pod>,
    name: String,
    status: tokio::sync::Mutex<PodStatus>,
}

impl StatusWriter {
    async fn update(&self, change: impl FnOnce(&mut PodStatus)) {
        let mut status = self.status.lock().await;
        change(&mut status);
        derive_conditions(&mut status);
        let patch = Patch::Strategic(serde_json::json!({ "status": *status }));
        if let Err(e) = self
            .api
            .patch_status(&self.name, &PatchParams::default(), &patch)
            .await
        {
            eprintln!(
                "pod runner: cannot write the status of pod {}: {e}",
                self.name
            );
        }
    }
}

fn now() -> Time {
    Time(Timestamp::now())
}

fn set_condition(status: &mut PodStatus, type_: &str, value: bool) {
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    let value = if value { "True" } else { "False" };
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(c) if c.status == value => {}
        Some(c) => {
            c.status = value.into();
            c.last_transition_time = Some(now());
        }
        None => conditions.push(PodCondition {
            type_: type_.into(),
            status: value.into(),
            last_transition_time: Some(now()),
            ..Default::default()
        }),
    }
}

fn derive_conditions(status: &mut PodStatus) {
    let initialized = status.init_container_statuses.iter().flatten().all(|s| {
        s.state
            .as_ref()
            .and_then(|st| st.terminated.as_ref())
            .is_some_and(|t| t.exit_code == 0)
    });
    let statuses = status.container_statuses.as_deref().unwrap_or_default();
    let ready = !statuses.is_empty() && statuses.iter().all(|s| s.ready);
    set_condition(status, "Initialized", initialized);
    set_condition(status, "ContainersReady", ready);
    set_condition(status, "Ready", ready);
}

fn waiting(container: &Container, reason: &str, message: Option<String>) -> ContainerStatus {
    ContainerStatus {
        name: container.name.clone(),
        image: container.image.clone().unwrap_or_default(),
        state: Some(ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some(reason.into()),
                message,
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// One container's slot in the status: init and regular containers are listed separately.
#[derive(Clone, Copy)]
struct Slot {
    init: bool,
    index: usize,
}

impl Slot {
    fn of(self, status: &mut PodStatus) -> &mut ContainerStatus {
        let list = if self.init {
            &mut status.init_container_statuses
        } else {
            &mut status.container_statuses
        };
        &mut list.as_mut().expect("container statuses are set at start")[self.index]
    }
}

/// Runs `pod` to completion (or until `handle.stop()`).
pub async fn run(shared: Arc<Shared>, pod: Pod, handle: Arc<Handle>) {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let spec = pod.spec.clone().unwrap_or_default();
    let ips = || {
        Some(vec![PodIP {
            ip: LOOPBACK.into(),
        }])
    };
    let initial = PodStatus {
        phase: Some("Pending".into()),
        host_ip: Some(LOOPBACK.into()),
        host_ips: Some(vec![HostIP {
            ip: LOOPBACK.into(),
        }]),
        pod_ip: Some(LOOPBACK.into()),
        pod_ips: ips(),
        start_time: Some(now()),
        init_container_statuses: spec.init_containers.as_ref().map(|cs| {
            cs.iter()
                .map(|c| waiting(c, "PodInitializing", None))
                .collect()
        }),
        container_statuses: Some(
            spec.containers
                .iter()
                .map(|c| waiting(c, "ContainerCreating", None))
                .collect(),
        ),
        ..Default::default()
    };
    let writer = StatusWriter {
        api: Api::namespaced(
            shared.client.clone(),
            pod.metadata.namespace.as_deref().unwrap_or("default"),
        ),
        name: name.clone(),
        status: tokio::sync::Mutex::new(initial),
    };
    writer
        .update(|s| set_condition(s, "PodReadyToStartContainers", false))
        .await;

    let dir = shared.dir.path().join(&uid);
    let volumes = loop {
        match spec::materialise_volumes(&shared.client, &pod, &dir.join("volumes")).await {
            Ok(volumes) => break volumes,
            Err(e) if !handle.stopping() => {
                let message = format!("{e:#}");
                writer
                    .update(|s| {
                        for c in s.container_statuses.iter_mut().flatten() {
                            if let Some(w) = c.state.as_mut().and_then(|st| st.waiting.as_mut()) {
                                w.message = Some(message.clone());
                            }
                        }
                    })
                    .await;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(_) => return,
        }
    };
    writer
        .update(|s| set_condition(s, "PodReadyToStartContainers", true))
        .await;

    let policy = match spec.restart_policy.as_deref() {
        Some("Never") => Restart::Never,
        Some("OnFailure") => Restart::OnFailure,
        _ => Restart::Always,
    };
    let run = Run {
        shared: &shared,
        pod: &pod,
        handle: &handle,
        writer: &writer,
        volumes: &volumes,
        dir: &dir,
    };
    // An init container must succeed before the next starts; a failed one is retried unless restartPolicy is Never.
    let init_policy = if policy == Restart::Never {
        Restart::Never
    } else {
        Restart::OnFailure
    };
    for (index, container) in spec.init_containers.iter().flatten().enumerate() {
        if run
            .container(container, Slot { init: true, index }, init_policy)
            .await
            != 0
        {
            writer.update(|s| s.phase = Some("Failed".into())).await;
            return;
        }
    }
    let runs = spec
        .containers
        .iter()
        .enumerate()
        .map(|(index, c)| run.container(c, Slot { init: false, index }, policy));
    let codes = futures::future::join_all(runs).await;
    let phase = if codes.iter().all(|c| *c == 0) {
        "Succeeded"
    } else {
        "Failed"
    };
    writer.update(|s| s.phase = Some(phase.into())).await;
}

/// Everything one pod's containers share.
struct Run<'a> {
    shared: &'a Shared,
    pod: &'a Pod,
    handle: &'a Handle,
    writer: &'a StatusWriter,
    volumes: &'a HashMap<String, PathBuf>,
    dir: &'a Path,
}

impl Run<'_> {
    /// Runs a container, restarting it as `policy` says; returns its last exit code.
    async fn container(&self, container: &Container, slot: Slot, policy: Restart) -> i32 {
        let mut restarts: i32 = 0;
        loop {
            if self.handle.stopping() {
                return 137;
            }
            let dir = self.dir.join(format!("{}-{restarts}", container.name));
            let launch =
                match spec::launch(&self.shared.client, self.pod, container, self.volumes, &dir)
                    .await
                {
                    Ok(launch) => launch,
                    Err(e) => {
                        let status = waiting(
                            container,
                            "CreateContainerConfigError",
                            Some(format!("{e:#}")),
                        );
                        self.writer
                            .update(|s| {
                                *slot.of(s) = ContainerStatus {
                                    restart_count: restarts,
                                    ..status
                                }
                            })
                            .await;
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                };
            let code = self.execute(container, slot, launch, &dir).await;
            let again = match policy {
                Restart::Never => false,
                Restart::OnFailure => code != 0,
                Restart::Always => true,
            };
            if !again || self.handle.stopping() {
                return code;
            }
            restarts += 1;
            self.writer
                .update(|s| {
                    let st = slot.of(s);
                    st.last_state = st.state.take();
                    st.state = waiting(container, "CrashLoopBackOff", None).state;
                    st.restart_count = restarts;
                })
                .await;
            // The kubelet's back-off, shortened: 1s, 2s, 4s, ... up to 10s.
            tokio::time::sleep(
                Duration::from_secs(1 << restarts.min(4) as u32).min(Duration::from_secs(10)),
            )
            .await;
        }
    }

    /// One run of a container as a local process; returns its exit code (128 + signal if killed).
    async fn execute(&self, container: &Container, slot: Slot, launch: Launch, dir: &Path) -> i32 {
        let pod_name = self.pod.metadata.name.as_deref().unwrap_or_default();
        let log = self.shared.logs.start(pod_name, &container.name);
        let mut cmd = tokio::process::Command::new(&launch.argv[0]);
        cmd.args(&launch.argv[1..])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", dir)
            .env("HOSTNAME", pod_name)
            .envs(launch.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&launch.cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        isolate(cmd.as_std_mut());
        self.shared.count_execution(pod_name);
        let started_at = now();
        let mut child = match cmd.spawn() {
            Ok(child) => child,
            Err(e) => {
                let message = format!("cannot start {:?}: {e}", launch.argv[0]);
                log.push(Stream::Stderr, format!("{message}\n").into_bytes());
                log.close();
                self.finish(slot, 128, "StartError", Some(message), started_at, None)
                    .await;
                return 128;
            }
        };
        let pid = child.id().expect("a just spawned child has a pid");
        let mut guard = GroupGuard(Some(pid));
        self.handle.groups.lock().unwrap().insert(pid);
        if self.handle.stopping() {
            signal_group(pid, libc::SIGTERM);
        }
        let container_id = format!("millrace://{pid}");
        self.writer
            .update(|s| {
                if !slot.init {
                    s.phase = Some("Running".into());
                }
                let st = slot.of(s);
                st.state = Some(ContainerState {
                    running: Some(ContainerStateRunning {
                        started_at: Some(started_at.clone()),
                    }),
                    ..Default::default()
                });
                st.container_id = Some(container_id.clone());
                st.started = Some(true);
                st.ready = !slot.init;
            })
            .await;
        let stdout = tokio::spawn(capture(
            child.stdout.take().unwrap(),
            log.clone(),
            Stream::Stdout,
        ));
        let stderr = tokio::spawn(capture(
            child.stderr.take().unwrap(),
            log.clone(),
            Stream::Stderr,
        ));
        let status = child.wait().await;
        // The container ends with its main process; whatever it left behind goes too (and closes the pipes).
        signal_group(pid, libc::SIGKILL);
        guard.0 = None;
        let _ = tokio::join!(stdout, stderr);
        self.handle.groups.lock().unwrap().remove(&pid);
        log.close();
        let code = match status {
            Ok(s) => s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0)),
            Err(_) => 128,
        };
        let message = termination_message(container, &launch, &log, code);
        let reason = if code == 0 { "Completed" } else { "Error" };
        self.finish(slot, code, reason, message, started_at, Some(container_id))
            .await;
        code
    }

    async fn finish(
        &self,
        slot: Slot,
        code: i32,
        reason: &str,
        message: Option<String>,
        started_at: Time,
        container_id: Option<String>,
    ) {
        self.writer
            .update(|s| {
                let st = slot.of(s);
                st.state = Some(ContainerState {
                    terminated: Some(ContainerStateTerminated {
                        exit_code: code,
                        reason: Some(reason.into()),
                        message,
                        started_at: Some(started_at),
                        finished_at: Some(now()),
                        container_id: container_id.clone(),
                        ..Default::default()
                    }),
                    ..Default::default()
                });
                st.container_id = container_id;
                st.ready = false;
                st.started = Some(false);
            })
            .await;
    }
}

/// The file at terminationMessagePath, or with FallbackToLogsOnError the log tail of a failed run.
fn termination_message(
    container: &Container,
    launch: &Launch,
    log: &ContainerLog,
    code: i32,
) -> Option<String> {
    let mut bytes = std::fs::read(&launch.termination_log).unwrap_or_default();
    bytes.truncate(MAX_MESSAGE);
    let mut message = String::from_utf8_lossy(&bytes).into_owned();
    if message.is_empty()
        && code != 0
        && container.termination_message_policy.as_deref() == Some("FallbackToLogsOnError")
    {
        message = log.tail(80, 2048);
    }
    (!message.is_empty()).then_some(message)
}

async fn capture(pipe: impl AsyncRead + Unpin, log: Arc<ContainerLog>, stream: Stream) {
    let mut reader = BufReader::new(pipe);
    loop {
        let mut line = Vec::new();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => log.push(stream, line),
        }
    }
}
