//! The fake's model of daprd's API for requests no script answered: which path does what, and
//! the status and body daprd gives for it.

use http::header::CONTENT_TYPE;
use http::{Method, StatusCode};
use serde_json::{Value, json};

use super::{Answer, FakeSidecar, Invocation, JobCall, Model, Published, Recorded};
use crate::jobs::PROTOBUF_VALUE_TYPE;

pub(super) fn answer(fake: &FakeSidecar, request: &Recorded) -> Answer {
    let segments = request.segments();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    // The handler runs outside the lock: it is test code and may call back into the fake.
    if let ["v1.0", "invoke", ..] = segments.as_slice() {
        let handler = fake.lock().invoke.clone();
        return match (Invocation::from_request(request.clone()), handler) {
            (Some(invocation), Some(handler)) => handler(&invocation),
            (Some(invocation), None) => Answer::dapr_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "ERR_DIRECT_INVOKE",
                &format!(
                    "fail to invoke, id: {}, err: the fake sidecar has no invoke handler",
                    invocation.app_id
                ),
            ),
            (None, _) => unknown(request),
        };
    }
    let mut model = fake.lock();
    match (&request.method, segments.as_slice()) {
        (&Method::GET, ["v1.0", "healthz"] | ["v1.0", "healthz", "outbound"]) => {
            Answer::empty(StatusCode::NO_CONTENT)
        }
        (&Method::GET, ["v1.0", "metadata"]) => Answer::json(
            StatusCode::OK,
            &json!({"id": "fake-sidecar", "runtimeVersion": "fake", "components": []}),
        ),
        (_, ["v1.0", "state", store, rest @ ..]) => model.state.answer(store, rest, request),
        (_, ["v1.0", "jobs", name]) => model.job(&request.method, name, request),
        (&Method::POST, ["v1.0", "publish", pubsub, topic @ ..]) if !topic.is_empty() => {
            model.publish(pubsub, &topic.join("/"), request)
        }
        (&Method::GET, ["v1.0", "secrets", _store, "bulk"]) => {
            let all = serde_json::to_value(&model.secrets).unwrap_or_default();
            Answer::json(StatusCode::OK, &all)
        }
        (&Method::GET, ["v1.0", "secrets", _store, name]) => match model.secrets.get(*name) {
            Some(secret) => Answer::json(
                StatusCode::OK,
                &serde_json::to_value(secret).unwrap_or_default(),
            ),
            // What the local file store answers: permanent, not a reason to retry.
            None => Answer::dapr_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "ERR_SECRET_GET",
                &format!("failed getting secret with key {name}: secret {name} not found"),
            ),
        },
        _ => unknown(request),
    }
}

/// A path the fake does not serve: a 404 naming it, so that a test learns what is missing.
pub(super) fn unknown(request: &Recorded) -> Answer {
    Answer::dapr_error(
        StatusCode::NOT_FOUND,
        "ERR_FAKE_UNKNOWN_ROUTE",
        &format!(
            "the fake sidecar does not serve {} {}",
            request.method, request.path
        ),
    )
}

impl Model {
    fn job(&mut self, method: &Method, name: &str, request: &Recorded) -> Answer {
        let call = match *method {
            Method::GET => {
                return match self.jobs.get(name) {
                    Some(job) => Answer::json(StatusCode::OK, &read_back(name, job)),
                    // What daprd answers for a job the Scheduler does not have.
                    None => Answer::dapr_error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "DAPR_SCHEDULER_GET_JOB",
                        &format!(
                            "failed to get job due to: rpc error: code = NotFound desc = job not found: {name}"
                        ),
                    ),
                };
            }
            Method::POST => {
                let job = request.json();
                self.jobs.insert(name.to_owned(), job.clone());
                JobCall::Schedule(name.to_owned(), job)
            }
            Method::DELETE => {
                self.jobs.remove(name);
                JobCall::Delete(name.to_owned())
            }
            _ => return unknown(request),
        };
        self.job_calls.push(call);
        if let Some((key, value)) = self.write_after_next_job_call.take() {
            self.state.put(&key, value, None);
        }
        Answer::empty(StatusCode::NO_CONTENT)
    }

    fn publish(&mut self, pubsub: &str, topic: &str, request: &Recorded) -> Answer {
        let accepted = match self.failing_publishes.checked_sub(1) {
            Some(remaining) => {
                self.failing_publishes = remaining;
                false
            }
            None => true,
        };
        self.publishes.push(Published {
            pubsub: pubsub.to_owned(),
            topic: topic.to_owned(),
            content_type: request.header(CONTENT_TYPE.as_str()).map(str::to_owned),
            event: request.json(),
            accepted,
        });
        if accepted {
            Answer::empty(StatusCode::NO_CONTENT)
        } else {
            Answer::dapr_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "ERR_PUBSUB_PUBLISH_MESSAGE",
                "broker unavailable",
            )
        }
    }
}

/// A scheduled job as daprd reads it back: its name added, its `data` wrapped in a protobuf
/// `Any` around a `Value`.
fn read_back(name: &str, scheduled: &Value) -> Value {
    let mut job = scheduled.clone();
    if let Some(fields) = job.as_object_mut() {
        fields.insert("name".to_owned(), json!(name));
        if let Some(data) = fields.remove("data") {
            fields.insert(
                "data".to_owned(),
                json!({"@type": PROTOBUF_VALUE_TYPE, "value": data}),
            );
        }
    }
    job
}
