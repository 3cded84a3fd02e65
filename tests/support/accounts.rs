//! Clients that act as a ServiceAccount (a token from the TokenRequest API), to test what RBAC
//! allows it; one of them records every request the API server refuses with 403.

use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use anyhow::{Context as _, Result};
use futures::future::BoxFuture;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::PostParams;
use kube::client::{Body, ClientBuilder};
use kube::config::AuthInfo;
use kube::{Api, Client, Config};

use super::cluster::ControlPlane;

/// The requests a client was refused, as `METHOD path?query`.
pub type Refusals = Arc<Mutex<Vec<String>>>;

/// A token for ServiceAccount `account` of `namespace`.
pub async fn token(admin: &Client, namespace: &str, account: &str) -> Result<String> {
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            expiration_seconds: Some(3600),
            ..Default::default()
        }),
        ..Default::default()
    };
    let response = Api::<ServiceAccount>::namespaced(admin.clone(), namespace)
        .create_token_request(account, &PostParams::default(), &request)
        .await
        .with_context(|| format!("TokenRequest for ServiceAccount {namespace}/{account}"))?;
    let status = response.status.context("TokenRequest without status")?;
    status.token.context("TokenRequest status without token")
}

/// The control plane's address and CA with the account's token as the only credential.
pub async fn config_as(cp: &ControlPlane, namespace: &str, account: &str) -> Result<Config> {
    let token = token(&cp.client(), namespace, account).await?;
    let mut config = cp.config().clone();
    config.auth_info = AuthInfo {
        token: Some(token.into()),
        ..Default::default()
    };
    Ok(config)
}

/// A client acting as ServiceAccount `account` of `namespace`.
pub async fn client_as(cp: &ControlPlane, namespace: &str, account: &str) -> Result<Client> {
    Ok(Client::try_from(config_as(cp, namespace, account).await?)?)
}

/// Like `client_as`, and every request refused with 403 Forbidden is recorded.
#[allow(dead_code, reason = "only the chart tests record refusals")]
pub async fn recording_client_as(
    cp: &ControlPlane,
    namespace: &str,
    account: &str,
) -> Result<(Client, Refusals)> {
    let config = config_as(cp, namespace, account).await?;
    let refusals = Refusals::default();
    let record = refusals.clone();
    let client = ClientBuilder::try_from(config)?
        .with_layer(&tower::layer::layer_fn(move |inner| RecordForbidden {
            inner,
            refusals: record.clone(),
        }))
        .build();
    Ok((client, refusals))
}

#[allow(dead_code, reason = "only the chart tests check refusals")]
pub fn is_forbidden<T>(result: &kube::Result<T>) -> bool {
    matches!(result, Err(kube::Error::Api(status)) if status.code == 403)
}

#[derive(Clone)]
struct RecordForbidden<S> {
    inner: S,
    refusals: Refusals,
}

impl<S, B> tower::Service<http::Request<Body>> for RecordForbidden<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<B>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let what = format!("{} {}", request.method(), request.uri());
        let refusals = self.refusals.clone();
        let response = self.inner.call(request);
        // A watch is refused in its response head too, so every kind of request is seen here.
        Box::pin(async move {
            let response = response.await?;
            if response.status() == http::StatusCode::FORBIDDEN {
                refusals.lock().unwrap().push(what);
            }
            Ok(response)
        })
    }
}
