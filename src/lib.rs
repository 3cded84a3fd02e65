//! Millrace: run OpenFlow flows on one machine or on Kubernetes.

pub mod engine;
pub mod expr;
pub mod flow;
pub mod k8s;
