//! The bundled hub scripts against a local HTTP server.

mod support {
    pub mod http;
}

use millrace::engine::{AttemptId, StepError, StepPath, StepSpec};
use millrace::exec::local::LocalExecutor;
use millrace::exec::runners::Toolchain;
use millrace::exec::{Executor, StepGuard};
use serde_json::{Value, json};
use support::http::serve;

async fn run_hub(name: &str, args: Value) -> Result<Value, StepError> {
    let script = millrace::hub::find(&format!("hub/{name}")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let exec = LocalExecutor::new(
        dir.path().to_path_buf(),
        1,
        Toolchain::from_env(),
        StepGuard::new(env!("CARGO_BIN_EXE_millrace")),
        None,
    )
    .unwrap();
    let spec = StepSpec {
        language: script.language.name().into(),
        content: script.content.into(),
        args: args.as_object().cloned().unwrap(),
        timeout_ms: None,
        script_path: Some(format!("hub/{name}")),
        lock: None,
        summary: None,
    };
    let id = AttemptId {
        step: StepPath::parse(name),
        attempt: 1,
    };
    exec.run(id, spec).await.result
}

#[tokio::test]
async fn http_request_returns_status_and_parsed_json() {
    let server = serve(1, 200, "application/json", r#"{"users": [1, 2]}"#);
    let args = json!({"url": format!("{}/users", server.url), "method": "post", "body": {"q": 1}});
    let result = run_hub("http_request", args).await.unwrap();
    assert_eq!(result["status"], 200);
    assert_eq!(result["body"], json!({"users": [1, 2]}));
    let request = server.requests.recv().unwrap();
    assert!(request.head.starts_with("POST /users "), "{}", request.head);
    assert_eq!(request.body, br#"{"q": 1}"#);
}

#[tokio::test]
async fn http_request_fails_on_error_status() {
    let server = serve(1, 404, "text/plain", "missing");
    let err = run_hub("http_request", json!({"url": server.url}))
        .await
        .unwrap_err();
    assert!(err.message.contains("answered 404"), "{err:?}");
}

#[tokio::test]
async fn slack_post_sends_a_message_as_json() {
    let server = serve(1, 200, "text/plain", "ok");
    let result = run_hub(
        "slack_post",
        json!({"webhook_url": server.url, "text": "hi"}),
    )
    .await
    .unwrap();
    assert_eq!(result, json!({"status": 200, "response": "ok"}));
    let request = server.requests.recv().unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&request.body).unwrap(),
        json!({"text": "hi"})
    );
}

#[tokio::test]
async fn slack_post_uploads_a_file_as_multipart() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("chart.png");
    std::fs::write(&file, b"\x89PNG-bytes").unwrap();
    let server = serve(1, 200, "text/plain", "ok");
    let args =
        json!({"webhook_url": server.url, "text": "the chart", "file_path": file, "token": "t0k"});
    run_hub("slack_post", args).await.unwrap();
    let request = server.requests.recv().unwrap();
    assert!(
        request.head.contains("multipart/form-data; boundary="),
        "{}",
        request.head
    );
    assert!(
        request.head.contains("Authorization: Bearer t0k"),
        "{}",
        request.head
    );
    let body = String::from_utf8_lossy(&request.body);
    assert!(body.contains("filename=\"chart.png\""), "{body}");
    assert!(
        body.contains("\x7fPNG-bytes") || body.contains("PNG-bytes"),
        "{body}"
    );
    assert!(body.contains("the chart"), "{body}");
}
