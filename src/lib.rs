//! Millrace: run OpenFlow flows on one machine or on Kubernetes.
