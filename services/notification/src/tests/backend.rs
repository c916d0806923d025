//! The backend behind the fake sidecar, as far as notification invokes it: tasks by id, and the
//! pending reminders the sweep asks for.

use std::collections::HashMap;

use axum::http::{Method, StatusCode};
use dapr::testing::{Answer, Invocation};
use serde_json::{Value, json};
use uuid::Uuid;

/// What the backend answers; tests fill it in.
#[derive(Debug, Default)]
pub(crate) struct Backend {
    /// Answers to `GET internal/tasks/{id}`: status and body. Unlisted tasks get 404.
    pub(crate) tasks: HashMap<Uuid, (u16, Value)>,
    /// Answer to `GET internal/reminders`: the pending tasks, as one page.
    pub(crate) pending_reminders: Vec<Value>,
}

impl Backend {
    /// The backend's answer to `call`, as daprd relays it.
    pub(crate) fn answer(&self, call: &Invocation) -> Answer {
        if call.app_id != "backend" || call.request.method != Method::GET {
            return Answer::dapr_error(
                StatusCode::NOT_FOUND,
                "ERR_FAKE_UNKNOWN_ROUTE",
                &format!(
                    "the backend does not serve {} {}",
                    call.request.method, call.path
                ),
            );
        }
        if call.path == "internal/reminders" {
            let items = self.pending_reminders.clone();
            return Answer::json(StatusCode::OK, &json!({"items": items, "next": null}));
        }
        let task = call
            .path
            .strip_prefix("internal/tasks/")
            .and_then(|id| id.parse::<Uuid>().ok());
        match task.and_then(|id| self.tasks.get(&id)) {
            Some((status, body)) => Answer::json(StatusCode::from_u16(*status).unwrap(), body),
            None => Answer::json(
                StatusCode::NOT_FOUND,
                &json!({"code": "TASK_NOT_FOUND", "message": "no such task"}),
            ),
        }
    }
}
