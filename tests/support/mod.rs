//! Test support: a real Kubernetes control plane and a pod runner standing in for the kubelet;
//! clients acting as a ServiceAccount (`accounts`), server-side apply of manifests (`manifests`),
//! the helm binary (`helm`) and the rendered chart (`chart`), helpers for local runs (`local`) and
//! a small HTTP server (`http`).
//!
//! The pod runner **ignores container images**: each container's command runs as a process on this
//! machine (see `pod_runner`). `runner.executions()` counts the process starts per pod.
//!
//! ```ignore
//! let Some(cp) = support::control_plane().await else { return }; // skipped without binaries
//! let client = cp.client();
//! let ns = cp.namespace("my-test").await;
//! let runner = cp.pod_runner(&ns).await;
//! ```

// Every test binary compiles this module and uses a different part of it.
#![allow(dead_code, unused_imports, reason = "shared by several test binaries")]

pub mod accounts;
pub mod built;
pub mod certs;
pub mod chart;
pub mod control_plane;
pub mod flows;
pub mod helm;
pub mod http;
pub mod kill_switch;
pub mod local;
pub mod manifests;
pub mod pod_runner;
pub mod process;
pub mod schedules;
pub mod testbin;

pub use control_plane::control_plane;
