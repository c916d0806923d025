//! An MCP client against the backend's complete router on a loopback port: the suites that call
//! the tools (`mcp.rs`, `import.rs`) go through it, so each checks the same things of an answer.

use backend::app::{self};
use middleware::AppTokenLayer;
use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::RunningService;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{RoleClient, ServiceExt};
use serde_json::Value;
use sqlx::PgPool;

pub(crate) type Client = RunningService<RoleClient, ()>;

/// Serves the complete app router, verifying HS256 tokens signed with `key`; returns the MCP
/// endpoint URL.
pub(crate) async fn serve(pool: PgPool, key: &str) -> String {
    let state = super::app_state(pool, key).await;
    let router = app::router(state, AppTokenLayer::new(None));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}/mcp")
}

/// An MCP client for `url` presenting the bearer `token`.
pub(crate) async fn connect(url: &str, token: String) -> Client {
    let config = StreamableHttpClientTransportConfig::with_uri(url).auth_header(token);
    ().serve(StreamableHttpClientTransport::from_config(config))
        .await
        .unwrap()
}

/// Calls `tool` with `args`; the call itself (the protocol) must succeed.
pub(crate) async fn call(client: &Client, tool: &'static str, args: Value) -> CallToolResult {
    let Value::Object(args) = args else {
        panic!("arguments must be an object");
    };
    client
        .call_tool(CallToolRequestParams::new(tool).with_arguments(args))
        .await
        .unwrap_or_else(|e| panic!("{tool}: protocol error {e}"))
}

/// The structured content of a successful call.
pub(crate) async fn ok(client: &Client, tool: &'static str, args: Value) -> Value {
    let result = call(client, tool, args).await;
    let body = result.structured_content.clone().unwrap_or(Value::Null);
    assert_ne!(result.is_error, Some(true), "{tool} failed: {body}");
    assert!(body.is_object(), "{tool}: structured content {body}");
    // The same JSON is in the text content for clients without structured content.
    let text = result.content.first().and_then(|c| c.as_text()).unwrap();
    assert_eq!(serde_json::from_str::<Value>(&text.text).unwrap(), body);
    body
}

/// The error body of a failed call, checked to carry `code`.
pub(crate) async fn err(client: &Client, tool: &'static str, args: Value, code: &str) -> Value {
    let result = call(client, tool, args).await;
    let body = result.structured_content.clone().unwrap_or(Value::Null);
    assert_eq!(
        result.is_error,
        Some(true),
        "{tool} should fail with {code}: {body}"
    );
    assert_eq!(body["code"], code, "{tool}: {body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(body["suggestions"].is_array(), "{body}");
    body
}

/// Every call in `calls` (a tool and its arguments) fails with `code`, as [`err`] checks.
pub(crate) async fn all_refused(client: &Client, code: &str, calls: Vec<(&'static str, Value)>) {
    for (tool, args) in calls {
        err(client, tool, args, code).await;
    }
}
