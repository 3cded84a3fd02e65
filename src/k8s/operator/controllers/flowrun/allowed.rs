//! Who a run's steps may run as. A Flow's `runtime` names the ServiceAccount of its step pods
//! and the Secrets of their environment; which ones it may name is the operator's setting, not
//! the Flow author's: with git sync, write access to a repository would otherwise grant the
//! rights of every ServiceAccount and Secret of the namespace.

use super::variables::{RESOURCES_SECRET, VARIABLES_SECRET};
use crate::k8s::api::PodSettings;
use k8s_openapi::api::core::v1::EnvFromSource;
use std::collections::BTreeSet;

/// The ServiceAccounts and Secrets (`envFrom`) step pods may use, by name, in any namespace.
/// The step ServiceAccount of the operator's defaults is always allowed: naming it is what
/// naming none does.
#[derive(Debug, Clone, PartialEq)]
pub struct Allowed {
    pub service_accounts: BTreeSet<String>,
    pub secrets: BTreeSet<String>,
}

impl Default for Allowed {
    fn default() -> Self {
        Allowed {
            service_accounts: BTreeSet::new(),
            secrets: BTreeSet::from([VARIABLES_SECRET.into(), RESOURCES_SECRET.into()]),
        }
    }
}

/// A name the operator does not allow steps to use, with the field that names it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "{field}: {kind} {name} is not among those the operator allows steps to use ({flag}); use an allowed one, or ask the operator's admin to allow it"
)]
pub struct NotAllowed {
    pub field: String,
    pub kind: &'static str,
    pub name: String,
    pub flag: &'static str,
}

/// Every name `runtime` (found at field path `at`) uses that is not allowed; `step_account` is
/// the operator's step ServiceAccount.
pub fn check(
    runtime: &PodSettings,
    at: &str,
    allowed: &Allowed,
    step_account: Option<&str>,
) -> Vec<NotAllowed> {
    let mut refused = Vec::new();
    if let Some(account) = &runtime.service_account_name
        && Some(account.as_str()) != step_account
        && !allowed.service_accounts.contains(account)
    {
        refused.push(NotAllowed {
            field: format!("{at}.serviceAccountName"),
            kind: "ServiceAccount",
            name: account.clone(),
            flag: "--allowed-service-accounts",
        });
    }
    let mut secrets = |env_from: &[EnvFromSource], at: String| {
        for (i, source) in env_from.iter().enumerate() {
            let Some(name) = source.secret_ref.as_ref().map(|s| &s.name) else {
                continue;
            };
            if !allowed.secrets.contains(name) {
                refused.push(NotAllowed {
                    field: format!("{at}.envFrom[{i}].secretRef.name"),
                    kind: "Secret",
                    name: name.clone(),
                    flag: "--allowed-secrets",
                });
            }
        }
    };
    secrets(&runtime.env_from, at.to_string());
    for (step, settings) in &runtime.steps {
        secrets(&settings.env_from, format!("{at}.steps.{step}"));
    }
    refused
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn runtime(settings: serde_json::Value) -> PodSettings {
        serde_json::from_value(settings).unwrap()
    }

    fn allowed() -> Allowed {
        Allowed {
            service_accounts: BTreeSet::from(["reporter".into()]),
            ..Allowed::default()
        }
    }

    #[test]
    fn allowed_names_and_the_step_account_pass() {
        let settings = runtime(json!({
            "serviceAccountName": "reporter",
            "envFrom": [{"secretRef": {"name": "millrace-variables"}}, {"configMapRef": {"name": "any"}}],
            "steps": {"a": {"envFrom": [{"secretRef": {"name": "millrace-resources"}}]}},
        }));
        assert_eq!(check(&settings, "spec.runtime", &allowed(), None), []);
        let own = runtime(json!({"serviceAccountName": "millrace-step"}));
        let refused = check(&own, "spec.runtime", &allowed(), Some("millrace-step"));
        assert_eq!(refused, []);
    }

    #[test]
    fn each_name_not_allowed_is_refused_naming_its_field_and_the_setting() {
        let settings = runtime(json!({
            "serviceAccountName": "admin",
            "envFrom": [{"configMapRef": {"name": "any"}}, {"secretRef": {"name": "db"}}],
            "steps": {"a": {"envFrom": [{"secretRef": {"name": "cloud"}}]}},
        }));
        let refused = check(
            &settings,
            "spec.flow.runtime",
            &allowed(),
            Some("millrace-step"),
        );
        let fields: Vec<&str> = refused.iter().map(|r| r.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spec.flow.runtime.serviceAccountName",
                "spec.flow.runtime.envFrom[1].secretRef.name",
                "spec.flow.runtime.steps.a.envFrom[0].secretRef.name",
            ]
        );
        assert_eq!(
            refused[0].to_string(),
            "spec.flow.runtime.serviceAccountName: ServiceAccount admin is not among those the operator allows steps to use (--allowed-service-accounts); use an allowed one, or ask the operator's admin to allow it"
        );
        assert!(refused[2].to_string().contains("Secret cloud"));
        assert!(refused[2].to_string().contains("--allowed-secrets"));
    }
}
