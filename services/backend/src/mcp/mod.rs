//! The MCP server: the original system's 18 task tools over Streamable HTTP, mounted at `/mcp`.
//!
//! # Design
//!
//! - **Stateless.** The transport runs rmcp's stateless mode (`legacy_session_mode = false`,
//!   [`NeverSessionManager`]): every POST is answered on its own, as plain JSON, and no
//!   `Mcp-Session-Id` is issued. Our tools are request/response only (no server-initiated
//!   requests, no progress streams, no subscriptions), so sessions would buy nothing but
//!   in-memory state pinning a client to one replica; without them any backend replica serves
//!   any request behind a plain load balancer, and a restart loses nothing.
//! - **The user comes from the token.** `app.rs` wraps this router in `require_user`, which
//!   rejects a request without a valid bearer token with HTTP 401 before MCP sees it and puts
//!   the [`AuthUser`](crate::domain::AuthUser) into the HTTP request's extensions. The
//!   transport hands the request's [`http::request::Parts`] to every tool call; the tools read
//!   the user from there (the `Caller` extractor) and from nowhere else — no tool has a user
//!   argument, and a `user_id` sent by an old prompt is ignored.
//! - **No logic here.** Each tool maps its arguments (the original names: `due_date`,
//!   `tag_ids`, `sort_by`, …) onto the service's input types and calls one
//!   [`TaskService`] method, the same one REST calls. Ids may also be the original system's
//!   integers, which `ids` resolves for the caller through the map the importer keeps.
//! - **Errors are tool results** with `isError: true` and a JSON body
//!   `{"code", "message", "field"?, "suggestions"}` the model can act on; `TASK_NOT_FOUND`
//!   carries the user's recent pending tasks as suggestions, database failures answer a
//!   generic `INTERNAL` and are logged once.
//! - **Host checks off.** rmcp by default accepts only loopback `Host` headers (a defence
//!   against DNS rebinding for unauthenticated local servers). This server sits behind Dapr,
//!   ingress and arbitrary host names, and every request must carry a bearer token that a
//!   rebinding page cannot attach, so the check is disabled.
//! - **HTTP errors are our JSON.** rmcp refuses a request it cannot take (wrong content type,
//!   a body that is no JSON-RPC message, a missing `Accept`, a method other than POST) with a
//!   plain-text body; `json_transport_errors` rewrites those as the `{code, message}` JSON of
//!   every other route. JSON-RPC errors are JSON already and pass untouched.

mod args;
mod descriptions;
mod ids;
mod reply;
mod tools;

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request};
use axum::middleware::{Next, from_fn};
use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};
use middleware::ErrorBody;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, Implementation, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler, tool_handler};
use tracing::Instrument;

use crate::app::AppState;
use crate::rest::ApiError;
use crate::rest::extract::has_json_content_type;
use crate::service::TaskService;

/// Most of an rmcp plain-text error quoted into the JSON error (they are one line).
const MAX_TRANSPORT_ERROR_BYTES: usize = 4 * 1024;

/// The MCP router, to be nested at `/mcp` behind `require_user`.
///
/// Serves MCP Streamable HTTP statelessly: `POST` carries JSON-RPC and is answered with JSON;
/// `GET` (a server-to-client stream) and `DELETE` (ending a session) answer 405, as there are
/// no sessions.
pub fn router(state: AppState) -> Router<AppState> {
    let server = TodoMcp {
        service: state.service,
        tools: Arc::new(tools::build()),
    };
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_sse_keep_alive(None)
        .disable_allowed_hosts();
    let service = StreamableHttpService::new(
        move || Ok(server.clone()),
        Arc::new(NeverSessionManager::default()),
        config,
    );
    Router::new()
        .route_service("/", service)
        .layer(from_fn(json_transport_errors))
}

/// Rewrites rmcp's plain-text HTTP errors as our JSON error; leaves every JSON answer alone.
///
/// The body is read here, before rmcp: one over the app's body limit then answers `413` JSON,
/// where rmcp would see a failing stream and answer a plain-text 500.
async fn json_transport_errors(request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let declared_json = has_json_content_type(&parts.headers);
    let bytes = match Bytes::from_request(Request::new(body), &()).await {
        Ok(bytes) => bytes,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return ApiError::PayloadTooLarge.into_response();
        }
        Err(rejection) => return ApiError::BadRequest(rejection.body_text()).into_response(),
    };
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error())
        || has_json_content_type(response.headers())
    {
        return response;
    }
    let (head, body) = response.into_parts();
    let text = axum::body::to_bytes(body, MAX_TRANSPORT_ERROR_BYTES)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    if status.is_server_error() {
        // Logged once by `ApiError`; rmcp's text may describe internals.
        return ApiError::Internal(format!("MCP transport answered {status}: {text}"))
            .into_response();
    }
    let (status, message) = match status {
        // rmcp answers 415 also for a JSON body that is no JSON-RPC message; with a JSON
        // content type it is the body, not its media type, that is wrong.
        StatusCode::UNSUPPORTED_MEDIA_TYPE if declared_json => (
            StatusCode::BAD_REQUEST,
            format!("the request body is not a JSON-RPC message: {text}"),
        ),
        other => (other, text),
    };
    let code = status
        .canonical_reason()
        .unwrap_or("Bad Request")
        .to_ascii_uppercase()
        .replace([' ', '-'], "_");
    let mut rewritten = ErrorBody::new(code, message).into_response_with(status);
    if let Some(allow) = head.headers.get(header::ALLOW) {
        rewritten.headers_mut().insert(header::ALLOW, allow.clone());
    }
    rewritten
}

/// One MCP request's handler: the service layer and the shared tool table.
#[derive(Clone)]
pub(crate) struct TodoMcp {
    service: TaskService,
    tools: Arc<ToolRouter<TodoMcp>>,
}

#[tool_handler(router = self.tools)]
impl ServerHandler for TodoMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("todo-dapr", env!("CARGO_PKG_VERSION")))
            .with_instructions(descriptions::INSTRUCTIONS)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let span = tracing::info_span!("mcp_tool", tool = %request.name);
        let call = ToolCallContext::new(self, request, context);
        self.tools.call(call).instrument(span).await
    }
}
