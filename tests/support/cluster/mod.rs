//! One real control plane per test binary: etcd, kube-apiserver and kube-controller-manager (job,
//! garbage-collector, ttl-after-finished, namespace, service-account and root-CA controllers) on free
//! loopback ports, with their own PKI, RBAC authorization and service-account token signing.
//!
//! Tests share it and isolate themselves by namespace. The processes are spawned from a thread that
//! lives as long as the test binary, so they die with it (see `process`), and an exit hook removes
//! the state directory (logs, PKI, kubeconfig) unless `MILLRACE_KEEP_CONTROL_PLANE` is set.
//!
//! The pod runner stands in for the kubelet and **ignores container images**: each container's
//! command runs as a process on this machine (see `pod_runner`); `runner.executions()` counts the
//! process starts per pod. `wait` holds the one timeout of these tests and the helpers that wait.
//!
//! ```ignore
//! let Some(cp) = support::cluster::control_plane().await else { return }; // skipped without binaries
//! let client = cp.client();
//! let ns = cp.namespace("my-test").await;
//! let runner = cp.pod_runner(&ns).await;
//! ```

pub mod built;
pub mod certs;
pub mod pod_runner;
pub mod process;
pub mod testbin;
pub mod wait;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use kube::api::{ObjectMeta, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};

use certs::{Ca, CertPair};
use pod_runner::PodRunner;
use process::{Daemon, signal_group};
use wait::{TIMEOUT, wait_until};

const CONTROLLERS: &str = "job-controller,garbage-collector-controller,ttl-after-finished-controller,\
namespace-controller,serviceaccount-controller,root-ca-certificate-publisher-controller,resourcequota-controller";

pub struct ControlPlane {
    config: Config,
    kubelet_serving: CertPair,
    /// The admin's kubeconfig, for programs run by the tests.
    #[allow(dead_code, reason = "read by write_kubeconfig only")]
    kubeconfig: Kubeconfig,
    /// The kube-apiserver's process (group leader), for the tests that make it unreachable.
    #[allow(dead_code, reason = "read by pause_api_server only")]
    api_server: u32,
}

static SHARED: OnceLock<Result<Option<ControlPlane>, String>> = OnceLock::new();

/// What the exit hook cleans up: process groups and the state directory.
static CLEANUP: Mutex<Option<(Vec<u32>, PathBuf)>> = Mutex::new(None);

/// The shared control plane, started on first use; `None` if the tests are to be skipped.
pub async fn control_plane() -> Option<&'static ControlPlane> {
    let shared = tokio::task::spawn_blocking(|| SHARED.get_or_init(start))
        .await
        .expect("control plane start");
    match shared {
        Ok(cp) => cp.as_ref(),
        Err(e) => panic!("the test control plane did not start: {e}"),
    }
}

fn start() -> Result<Option<ControlPlane>, String> {
    let Some(bin) = testbin::locate()? else {
        return Ok(None);
    };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("control-plane".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            match runtime.block_on(launch(&bin)) {
                Ok((cp, daemons)) => {
                    let _ = tx.send(Ok(Some(cp)));
                    // Parked for good: the daemons' death signal is tied to this thread.
                    let _keep = daemons;
                    loop {
                        std::thread::park();
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(format!("{e:#}")));
                }
            }
        })
        .map_err(|e| e.to_string())?;
    rx.recv().map_err(|e| e.to_string())?
}

extern "C" fn cleanup_at_exit() {
    if let Some((groups, dir)) = CLEANUP.lock().ok().and_then(|mut c| c.take()) {
        for group in groups {
            signal_group(group, libc::SIGKILL);
        }
        if std::env::var_os("MILLRACE_KEEP_CONTROL_PLANE").is_none() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

async fn launch(bin: &Path) -> Result<(ControlPlane, Vec<Daemon>)> {
    let started = Instant::now();
    let state = tempfile::Builder::new().prefix("millrace-cp-").tempdir()?;
    let dir = state.path().to_path_buf();
    let pki = dir.join("pki");
    std::fs::create_dir_all(&pki)?;

    let ca = Ca::new()?;
    let ca_file = pki.join("ca.crt");
    std::fs::write(&ca_file, &ca.cert)?;
    let in_cluster = [
        "10.0.0.1",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
    ];
    let (serving_crt, serving_key) = ca
        .serving("kube-apiserver", &in_cluster)?
        .write(&pki, "apiserver")?;
    let (kubelet_client_crt, kubelet_client_key) = ca
        .client("kube-apiserver-kubelet-client", &["system:masters"])?
        .write(&pki, "kubelet-client")?;
    let admin = ca.client("millrace-admin", &["system:masters"])?;
    let controller_manager = ca.client("system:kube-controller-manager", &[])?;
    // The apiserver signs service-account tokens with the private key and verifies them with the public one.
    let sa = rcgen::KeyPair::generate()?;
    let (sa_key, sa_pub) = (
        pki.join("service-account.key"),
        pki.join("service-account.pub"),
    );
    std::fs::write(&sa_key, sa.serialize_pem())?;
    std::fs::write(&sa_pub, sa.public_key_pem())?;

    let (etcd_port, peer_port, api_port) = (free_port()?, free_port()?, free_port()?);
    let etcd_url = format!("http://127.0.0.1:{etcd_port}");
    let peer_url = format!("http://127.0.0.1:{peer_port}");
    let api_url = format!("https://127.0.0.1:{api_port}");
    let arg = |k: &str, v: &dyn std::fmt::Display| format!("--{k}={v}");

    let mut daemons = Vec::new();
    let etcd_args = vec![
        arg("data-dir", &dir.join("etcd").display()),
        arg("listen-client-urls", &etcd_url),
        arg("advertise-client-urls", &etcd_url),
        arg("listen-peer-urls", &peer_url),
        arg("initial-advertise-peer-urls", &peer_url),
        arg("initial-cluster", &format!("default={peer_url}")),
        // Durability is worthless for a throwaway store, and fsync is slow on shared disks.
        "--unsafe-no-fsync".into(),
        arg("log-level", &"warn"),
    ];
    daemons.push(Daemon::spawn(
        "etcd",
        &bin.join("etcd"),
        &etcd_args,
        &dir.join("etcd.log"),
    )?);

    let apiserver_args = vec![
        arg("etcd-servers", &etcd_url),
        arg("bind-address", &"127.0.0.1"),
        arg("advertise-address", &"127.0.0.1"),
        arg("secure-port", &api_port),
        arg("cert-dir", &dir.join("apiserver").display()),
        arg("tls-cert-file", &serving_crt.display()),
        arg("tls-private-key-file", &serving_key.display()),
        arg("client-ca-file", &ca_file.display()),
        arg("authorization-mode", &"RBAC"),
        arg(
            "service-account-issuer",
            &"https://kubernetes.default.svc.cluster.local",
        ),
        arg("service-account-key-file", &sa_pub.display()),
        arg("service-account-signing-key-file", &sa_key.display()),
        arg("service-cluster-ip-range", &"10.0.0.0/24"),
        arg("allow-privileged", &true),
        // pods/log is proxied to the node's kubelet endpoint: the pod runner, at 127.0.0.1.
        arg("kubelet-client-certificate", &kubelet_client_crt.display()),
        arg("kubelet-client-key", &kubelet_client_key.display()),
        arg("kubelet-certificate-authority", &ca_file.display()),
        arg("kubelet-preferred-address-types", &"InternalIP"),
        arg("profiling", &false),
        // The apiserver cannot publish itself as an endpoint of the `kubernetes` service at a loopback address.
        arg("endpoint-reconciler-type", &"none"),
    ];
    daemons.push(Daemon::spawn(
        "kube-apiserver",
        &bin.join("kube-apiserver"),
        &apiserver_args,
        &dir.join("kube-apiserver.log"),
    )?);
    let api_server = daemons.last().map_or(0, Daemon::pid);

    let kubeconfig = dir.join("admin.kubeconfig");
    write_kubeconfig(
        &kubeconfig,
        &api_url,
        &ca_file,
        &admin.write(&pki, "admin")?,
    )?;
    let admin_kubeconfig = Kubeconfig::read_from(&kubeconfig)?;
    let config =
        Config::from_custom_kubeconfig(admin_kubeconfig.clone(), &KubeConfigOptions::default())
            .await?;
    let client = Client::try_from(config.clone())?;
    wait_for(&mut daemons, &dir, "kube-apiserver /readyz", || async {
        let request = hyper::Request::get("/readyz").body(Vec::new())?;
        Ok(client.request_text(request).await? == "ok")
    })
    .await?;

    let kcm_kubeconfig = dir.join("kube-controller-manager.kubeconfig");
    write_kubeconfig(
        &kcm_kubeconfig,
        &api_url,
        &ca_file,
        &controller_manager.write(&pki, "kube-controller-manager")?,
    )?;
    let kcm_args = vec![
        arg("kubeconfig", &kcm_kubeconfig.display()),
        arg("controllers", &CONTROLLERS),
        arg("leader-elect", &false),
        arg("bind-address", &"127.0.0.1"),
        arg("secure-port", &free_port()?),
        arg("cert-dir", &dir.join("kube-controller-manager").display()),
        arg("root-ca-file", &ca_file.display()),
        // Each controller acts as its own service account with the bootstrap RBAC roles, as on a real cluster.
        arg("use-service-account-credentials", &true),
        // The defaults (20 qps) throttle the job controller when many tests run at once.
        arg("kube-api-qps", &100),
        arg("kube-api-burst", &200),
    ];
    let kcm_log = dir.join("kube-controller-manager.log");
    daemons.push(Daemon::spawn(
        "kube-controller-manager",
        &bin.join("kube-controller-manager"),
        &kcm_args,
        &kcm_log,
    )?);
    // The service-account controller creating `default` shows the controller manager is at work.
    let accounts = Api::<ServiceAccount>::namespaced(client.clone(), "default");
    wait_for(&mut daemons, &dir, "kube-controller-manager", || async {
        Ok(accounts.get_opt("default").await?.is_some())
    })
    .await?;

    let kubelet_serving = ca.serving("millrace-pod-runner", &[])?;
    let dir = state.keep();
    *CLEANUP.lock().unwrap() = Some((daemons.iter().map(Daemon::pid).collect(), dir));
    // SAFETY: registering a plain extern "C" function.
    unsafe {
        libc::atexit(cleanup_at_exit);
    }
    eprintln!(
        "test control plane ready in {:.1}s; kubeconfig: {}",
        started.elapsed().as_secs_f64(),
        kubeconfig.display()
    );
    Ok((
        ControlPlane {
            config,
            kubelet_serving,
            kubeconfig: admin_kubeconfig,
            api_server,
        },
        daemons,
    ))
}

fn write_kubeconfig(
    path: &Path,
    server: &str,
    ca: &Path,
    (crt, key): &(PathBuf, PathBuf),
) -> Result<()> {
    let yaml = format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: test\n\
         clusters: [{{name: test, cluster: {{server: '{server}', certificate-authority: '{}'}}}}]\n\
         users: [{{name: test, user: {{client-certificate: '{}', client-key: '{}'}}}}]\n\
         contexts: [{{name: test, context: {{cluster: test, user: test}}}}]\n",
        ca.display(),
        crt.display(),
        key.display()
    );
    std::fs::write(path, yaml)?;
    Ok(())
}

/// Polls `ready` until it holds, failing early (with the log tail) if a daemon exits.
async fn wait_for<F, Fut>(daemons: &mut [Daemon], dir: &Path, what: &str, ready: F) -> Result<()>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<bool>>,
{
    wait_until(what, TIMEOUT, || {
        let exited = daemons.iter_mut().find_map(|d| Some((d.name, d.exited()?)));
        let ready = ready();
        async move {
            if let Some((name, status)) = exited {
                let log =
                    std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(30).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                bail!(
                    "{name} exited ({status}) while waiting for {what}:\n{}",
                    tail.join("\n")
                );
            }
            Ok(matches!(ready.await, Ok(true)).then_some(()))
        }
    })
    .await
}

impl ControlPlane {
    /// A client with cluster-admin rights (group system:masters).
    pub fn client(&self) -> Client {
        Client::try_from(self.config.clone()).expect("client for the test control plane")
    }

    /// The config behind `client()`, to derive clients with other credentials.
    #[allow(
        dead_code,
        reason = "only tests that act with other credentials derive clients"
    )]
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Makes the kube-apiserver unreachable (stopped, connections hang) until
    /// [`resume_api_server`](Self::resume_api_server); etcd and the controller manager go on.
    #[allow(dead_code, reason = "for the control-plane fault tests")]
    pub fn pause_api_server(&self) {
        signal_group(self.api_server, libc::SIGSTOP);
    }

    #[allow(dead_code, reason = "for the control-plane fault tests")]
    pub fn resume_api_server(&self) {
        signal_group(self.api_server, libc::SIGCONT);
    }

    /// Writes a kubeconfig with cluster-admin rights whose context defaults to `namespace`, for
    /// running programs (like the `millrace` binary) against this control plane.
    #[allow(
        dead_code,
        reason = "only tests that run the millrace binary write one"
    )]
    pub fn write_kubeconfig(&self, path: &Path, namespace: &str) -> Result<()> {
        let mut kubeconfig = self.kubeconfig.clone();
        for context in &mut kubeconfig.contexts {
            if let Some(context) = context.context.as_mut() {
                context.namespace = Some(namespace.to_string());
            }
        }
        std::fs::write(path, serde_yaml_ng::to_string(&kubeconfig)?)?;
        Ok(())
    }

    /// A fresh namespace `<prefix>-<random>`, ready for pods (its `default` service account exists).
    pub async fn namespace(&self, prefix: &str) -> String {
        let suffix: String = (0..6)
            .map(|_| (b'a' + rand::random_range(0..26u8)) as char)
            .collect();
        let name = format!("{prefix}-{suffix}");
        let client = self.client();
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                ..Default::default()
            },
            ..Default::default()
        };
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .expect("create namespace");
        let accounts = Api::<ServiceAccount>::namespaced(client.clone(), &name);
        let root_ca = Api::<ConfigMap>::namespaced(client, &name);
        let what = format!(
            "the controller manager creates the service account and root CA of namespace {name}"
        );
        wait_until(&what, TIMEOUT, || async {
            let account = accounts.get_opt("default").await?.is_some();
            let ca = root_ca.get_opt("kube-root-ca.crt").await?.is_some();
            Ok((account && ca).then_some(()))
        })
        .await
        .expect("a namespace ready for pods");
        name
    }

    /// A pod runner for `namespace` whose log endpoint the apiserver trusts.
    pub async fn pod_runner(&self, namespace: &str) -> PodRunner {
        PodRunner::start(self.client(), namespace, &self.kubelet_serving)
            .await
            .context("start pod runner")
            .unwrap()
    }
}
