//! `millrace controller --leader-elect` as a replica pod runs it: the real binary, in a process
//! group of its own, with a short lease, its endpoint on a free port and its log in a file.

use super::cluster::ControlPlane;
use super::cluster::process::{isolate, signal_group};
use anyhow::{Context, Result};
use k8s_openapi::api::coordination::v1::Lease;
use kube::{Api, Client};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const LEASE: &str = "millrace-controller";

pub struct Replica {
    pub identity: String,
    pub addr: SocketAddr,
    child: Child,
    log: tempfile::NamedTempFile,
    _dir: tempfile::TempDir,
}

impl Replica {
    /// A replica named `identity` in namespace `ns`, holding the lease for `duration` seconds
    /// and renewing it `renew_before` seconds before it expires.
    pub fn start(
        cp: &ControlPlane,
        ns: &str,
        identity: &str,
        duration: u64,
        renew_before: u64,
    ) -> Result<Replica> {
        let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let dir = tempfile::tempdir()?;
        let kubeconfig = dir.path().join("kubeconfig");
        cp.write_kubeconfig(&kubeconfig, ns)?;
        let log = tempfile::NamedTempFile::new()?;
        let mut command = Command::new(env!("CARGO_BIN_EXE_millrace"));
        command
            .args(["controller", "--namespace", ns, "--leader-elect"])
            .args(["--lease-duration-seconds", &duration.to_string()])
            .args(["--lease-renew-before-seconds", &renew_before.to_string()])
            .args(["--metrics-addr", &addr.to_string()])
            .env("KUBECONFIG", &kubeconfig)
            .env("POD_NAMESPACE", ns)
            .env("POD_NAME", identity)
            .stdin(Stdio::null())
            .stdout(log.reopen()?)
            .stderr(log.reopen()?);
        isolate(&mut command);
        Ok(Replica {
            identity: identity.into(),
            addr,
            child: command.spawn()?,
            log,
            _dir: dir,
        })
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// `/metrics` as Prometheus text.
    pub async fn metrics(&self) -> Result<String> {
        let mut stream = tokio::net::TcpStream::connect(self.addr).await?;
        let request = format!(
            "GET /metrics HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
        );
        stream.write_all(request.as_bytes()).await?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await?;
        let (_, body) = response
            .split_once("\r\n\r\n")
            .context("an HTTP response")?;
        Ok(body.to_owned())
    }

    /// The value of `millrace_leader`, if it is shown.
    pub async fn leader_gauge(&self) -> Result<Option<f64>> {
        Ok(sample(&self.metrics().await?, "millrace_leader"))
    }

    #[allow(dead_code, reason = "only the takeover test kills a replica")]
    /// Kills it as a node failure would: SIGKILL to its process group, nothing released.
    pub fn kill(&mut self) -> Result<()> {
        signal_group(self.child.id(), libc::SIGKILL);
        self.child.wait()?;
        Ok(())
    }

    #[allow(
        dead_code,
        reason = "only the lease-loss test waits for a replica to exit"
    )]
    /// `Some(status)` once it has exited.
    pub fn exited(&mut self) -> Result<Option<ExitStatus>> {
        Ok(self.child.try_wait()?)
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        signal_group(self.child.id(), libc::SIGKILL);
        let _ = self.child.wait();
    }
}

/// The value of the sample `name` (with its labels, as rendered) in Prometheus text.
pub fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// The Lease's holder and last renewal, if it exists.
pub async fn lease(
    client: &Client,
    ns: &str,
) -> Result<Option<k8s_openapi::api::coordination::v1::LeaseSpec>> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), ns);
    Ok(leases.get_opt(LEASE).await?.and_then(|l| l.spec))
}

/// Who holds the Lease now.
pub async fn holder(client: &Client, ns: &str) -> Result<Option<String>> {
    Ok(lease(client, ns).await?.and_then(|l| l.holder_identity))
}
