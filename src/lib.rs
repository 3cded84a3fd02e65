//! Millrace: run OpenFlow flows on one machine or on Kubernetes.

pub mod cli;
pub mod engine;
pub mod exec;
pub mod expr;
pub mod flow;
pub mod gitsync;
pub mod graph;
pub mod hub;
pub mod k8s;
pub mod run;
pub mod schedule;
