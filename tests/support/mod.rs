//! Test support: a real Kubernetes control plane and a pod runner standing in for the kubelet.
//!
//! ```ignore
//! let Some(cp) = support::control_plane().await else { return }; // skipped without binaries
//! let client = cp.client();
//! let ns = cp.namespace("my-test").await;
//! let runner = cp.pod_runner(&ns).await;
//! ```

pub mod certs;
pub mod control_plane;
pub mod pod_runner;
pub mod process;
pub mod testbin;

pub use control_plane::control_plane;
