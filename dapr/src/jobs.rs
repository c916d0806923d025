//! The Jobs API: schedule, read and delete jobs the Dapr Scheduler triggers back at `/job/{name}`.
//!
//! Jobs are scoped to the calling app's id, so only this app's sidecar can read or delete them
//! and only this app is called back. We use the stable `/v1.0/jobs/{name}` path, which daprd
//! serves from 1.18 on (beside the deprecated `/v1.0-alpha1` one); older sidecars serve only
//! `/v1.0-alpha1` (see `docs/dapr.md`, "Troubleshooting").

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use http::{Method, StatusCode};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Value, json};

use crate::client::{DaprClient, body, decode_json, require_non_empty};
use crate::error::{DaprApiError, Error};

/// The `@type` daprd gives the `data` of a job it reads back (a protobuf `Any` around a `Value`).
pub(crate) const PROTOBUF_VALUE_TYPE: &str = "type.googleapis.com/google.protobuf.Value";

/// A job as sent to (and read back from) daprd, whose JSON names are camelCase (snake_case is
/// read too).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    /// Cron (`0 30 * * * *`, six fields) or `@every 1h`, `@daily`, ...; absent for one-shot jobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// First (or only) trigger: RFC 3339 time or a duration from now such as `30s`.
    #[serde(default, alias = "due_time", skip_serializing_if = "Option::is_none")]
    pub due_time: Option<String>,
    /// How many times to trigger; unlimited (until `ttl`) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeats: Option<u32>,
    /// When the job expires, in the same formats as `due_time`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
    /// Handed back verbatim as the body of the trigger call.
    #[serde(default, deserialize_with = "deserialize_job_data")]
    pub data: Value,
    /// Replace an existing job of the same name instead of failing with 409.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub overwrite: bool,
    /// What the Scheduler does when a trigger fails; daprd's default is 3 retries 1 s apart.
    #[serde(
        default,
        alias = "failure_policy",
        skip_serializing_if = "Option::is_none"
    )]
    pub failure_policy: Option<FailurePolicy>,
}

impl Job {
    /// A one-shot job due at `at`.
    pub fn once_at(at: DateTime<Utc>, data: Value) -> Self {
        Self::with_due_time(at.to_rfc3339_opts(SecondsFormat::AutoSi, true), data)
    }

    /// A one-shot job due `after` from when daprd receives it.
    pub fn once_after(after: Duration, data: Value) -> Self {
        Self::with_due_time(format_duration(after), data)
    }

    /// A recurring job on `schedule` (cron or `@every`).
    pub fn recurring(schedule: impl Into<String>, data: Value) -> Self {
        Self {
            schedule: Some(schedule.into()),
            ..Self::with_due_time(None::<String>, data)
        }
    }

    fn with_due_time(due_time: impl Into<Option<String>>, data: Value) -> Self {
        Self {
            schedule: None,
            due_time: due_time.into(),
            repeats: None,
            ttl: None,
            data,
            overwrite: false,
            failure_policy: None,
        }
    }

    /// Sets `overwrite`, so scheduling an existing name replaces it.
    #[must_use]
    pub fn with_overwrite(mut self, overwrite: bool) -> Self {
        self.overwrite = overwrite;
        self
    }

    /// Sets the failure policy.
    #[must_use]
    pub fn with_failure_policy(mut self, policy: FailurePolicy) -> Self {
        self.failure_policy = Some(policy);
        self
    }

    /// Sets the number of triggers.
    #[must_use]
    pub fn with_repeats(mut self, repeats: u32) -> Self {
        self.repeats = Some(repeats);
        self
    }

    /// Sets the expiry.
    #[must_use]
    pub fn with_ttl(mut self, ttl: impl Into<String>) -> Self {
        self.ttl = Some(ttl.into());
        self
    }
}

/// Unwraps daprd's `{"@type": ".../google.protobuf.Value", "value": ...}` rendering of job data.
fn deserialize_job_data<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
    let value = Value::deserialize(deserializer)?;
    Ok(match value {
        Value::Object(mut map)
            if map.len() <= 2
                && map.get("@type").and_then(Value::as_str) == Some(PROTOBUF_VALUE_TYPE) =>
        {
            map.remove("value").unwrap_or(Value::Null)
        }
        other => other,
    })
}

/// What the Scheduler does when the app fails a trigger (any status but 2xx and 404).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailurePolicy {
    /// Give up on this trigger at once.
    Drop,
    /// Retry every `interval`, at most `max_retries` times (forever when `None`).
    Constant {
        /// Time between retries.
        interval: Duration,
        /// Retry limit; `None` retries until the job expires.
        max_retries: Option<u32>,
    },
}

/// The protobuf-JSON form daprd reads: `{"drop":{}}` or `{"constant":{...}}`.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FailurePolicyWire {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    drop: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    constant: Option<ConstantWire>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConstantWire {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    interval: Option<String>,
    #[serde(
        default,
        alias = "max_retries",
        skip_serializing_if = "Option::is_none"
    )]
    max_retries: Option<u32>,
}

impl Serialize for FailurePolicy {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let wire = match *self {
            Self::Drop => FailurePolicyWire {
                drop: Some(json!({})),
                constant: None,
            },
            Self::Constant {
                interval,
                max_retries,
            } => FailurePolicyWire {
                drop: None,
                constant: Some(ConstantWire {
                    interval: Some(format_duration(interval)),
                    max_retries,
                }),
            },
        };
        wire.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for FailurePolicy {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = FailurePolicyWire::deserialize(deserializer)?;
        match (wire.drop, wire.constant) {
            (Some(_), None) => Ok(Self::Drop),
            (None, Some(constant)) => {
                let interval = match constant.interval {
                    Some(text) => parse_duration(&text).map_err(D::Error::custom)?,
                    None => Duration::ZERO,
                };
                Ok(Self::Constant {
                    interval,
                    max_retries: constant.max_retries,
                })
            }
            _ => Err(D::Error::custom(
                "failure policy must have exactly one of `drop`, `constant`",
            )),
        }
    }
}

/// A duration as protobuf JSON: seconds with an `s` suffix and up to nine fraction digits.
fn format_duration(duration: Duration) -> String {
    let secs = duration.as_secs();
    let nanos = duration.subsec_nanos();
    if nanos == 0 {
        format!("{secs}s")
    } else {
        let fraction = format!("{nanos:09}");
        format!("{secs}.{}s", fraction.trim_end_matches('0'))
    }
}

/// Parses a protobuf JSON duration (`3s`, `1.500s`); negative durations are rejected.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let invalid = || format!("`{text}` is not a protobuf duration like `1.5s`");
    let number = text.strip_suffix('s').ok_or_else(invalid)?;
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() || fraction.len() > 9 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    let secs: u64 = whole.parse().map_err(|_| invalid())?;
    let nanos: u32 = if fraction.is_empty() {
        0
    } else {
        format!("{fraction:0<9}").parse().map_err(|_| invalid())?
    };
    Ok(Duration::new(secs, nanos))
}

impl DaprClient {
    /// Schedules job `name`; a name that exists fails with 409 ([`Error::Api`]) unless
    /// `job.overwrite` is set.
    pub async fn schedule_job(&self, name: &str, job: &Job) -> Result<(), Error> {
        let url = self.job_url(name)?;
        Self::send_empty(self.request(Method::POST, url).json(job)).await
    }

    /// Reads job `name`; `None` when it does not exist.
    ///
    /// daprd has no 404 here: a missing job comes back as 500 `DAPR_SCHEDULER_GET_JOB` with the
    /// Scheduler's gRPC error in the message,
    /// `failed to get job due to: rpc error: code = NotFound desc = job not found: {name}`
    /// (dapr v1.18.3 `pkg/scheduler/server/api.go` and `pkg/api/errors/scheduler.go`). We read exactly that as "absent": other 500s (Scheduler
    /// down, timeouts) stay errors. A 404, should a later daprd send one, is "absent" too.
    pub async fn get_job(&self, name: &str) -> Result<Option<Job>, Error> {
        let url = self.job_url(name)?;
        match Self::send_ok(self.request(Method::GET, url)).await {
            Ok(response) => decode_json("job", &body(response).await?),
            Err(Error::Api(e)) if is_job_not_found(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Deletes job `name`; deleting an unknown name succeeds.
    pub async fn delete_job(&self, name: &str) -> Result<(), Error> {
        let url = self.job_url(name)?;
        Self::send_empty(self.request(Method::DELETE, url)).await
    }

    fn job_url(&self, name: &str) -> Result<reqwest::Url, Error> {
        require_non_empty("job name", name)?;
        self.url(["v1.0", "jobs", name])
    }
}

/// Whether a failed GET means "no such job" (see [`DaprClient::get_job`]).
fn is_job_not_found(error: &DaprApiError) -> bool {
    if error.status == StatusCode::NOT_FOUND {
        return true;
    }
    error.status == StatusCode::INTERNAL_SERVER_ERROR
        && error
            .error_code
            .as_deref()
            .is_none_or(|c| c == "DAPR_SCHEDULER_GET_JOB")
        && (error.message.contains("code = NotFound") || error.message.contains("job not found"))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn one_shot_jobs_serialise_to_daprd_shape() {
        let at = Utc.with_ymd_and_hms(2030, 1, 2, 3, 4, 5).unwrap();
        let job = Job::once_at(at, json!({"task_id": "t1"}))
            .with_overwrite(true)
            .with_failure_policy(FailurePolicy::Constant {
                interval: Duration::from_millis(1500),
                max_retries: Some(3),
            });
        assert_eq!(
            serde_json::to_value(&job).unwrap(),
            json!({
                "dueTime": "2030-01-02T03:04:05Z",
                "data": {"task_id": "t1"},
                "overwrite": true,
                "failurePolicy": {"constant": {"interval": "1.5s", "maxRetries": 3}}
            })
        );

        let job = Job::once_after(Duration::from_secs(30), json!("x"))
            .with_failure_policy(FailurePolicy::Drop);
        assert_eq!(
            serde_json::to_value(&job).unwrap(),
            json!({"dueTime": "30s", "data": "x", "failurePolicy": {"drop": {}}})
        );

        let job = Job::recurring("@every 1m", json!(null))
            .with_repeats(5)
            .with_ttl("1h");
        assert_eq!(
            serde_json::to_value(&job).unwrap(),
            json!({"schedule": "@every 1m", "repeats": 5, "ttl": "1h", "data": null})
        );
    }

    #[test]
    fn get_answer_unwraps_protobuf_value_data() {
        // Shape of daprd's GET answer (protojson of runtime.v1.Job).
        let job: Job = serde_json::from_value(json!({
            "name": "test",
            "schedule": "@every 1m",
            "repeats": 123,
            "dueTime": "1000s",
            "ttl": "123s",
            "data": {"@type": "type.googleapis.com/google.protobuf.Value", "value": {"a": [1, 2]}},
            "failurePolicy": {"constant": {"interval": "3s", "maxRetries": 5}}
        }))
        .unwrap();
        assert_eq!(job.data, json!({"a": [1, 2]}));
        assert_eq!(job.repeats, Some(123));
        assert_eq!(job.due_time.as_deref(), Some("1000s"));
        assert_eq!(
            job.failure_policy,
            Some(FailurePolicy::Constant {
                interval: Duration::from_secs(3),
                max_retries: Some(5)
            })
        );

        // Bare data and snake_case aliases are read too; other `@type`s are left alone.
        let job: Job = serde_json::from_value(json!({
            "due_time": "10s",
            "data": {"@type": "type.googleapis.com/google.protobuf.StringValue", "value": "s"},
            "failure_policy": {"constant": {"interval": "0.250s", "max_retries": 1}}
        }))
        .unwrap();
        assert_eq!(job.due_time.as_deref(), Some("10s"));
        assert_eq!(
            job.data["@type"],
            "type.googleapis.com/google.protobuf.StringValue"
        );
        assert_eq!(
            job.failure_policy,
            Some(FailurePolicy::Constant {
                interval: Duration::from_millis(250),
                max_retries: Some(1)
            })
        );
        let job: Job =
            serde_json::from_value(json!({"dueTime": "1s", "failurePolicy": {"drop": {}}}))
                .unwrap();
        assert_eq!(job.data, Value::Null);
        assert_eq!(job.failure_policy, Some(FailurePolicy::Drop));
    }

    #[test]
    fn protobuf_durations() {
        assert_eq!(format_duration(Duration::from_secs(3)), "3s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format_duration(Duration::from_nanos(1)), "0.000000001s");
        assert_eq!(parse_duration("3s"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("1.500s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("0.000000001s"), Ok(Duration::from_nanos(1)));
        for bad in ["3", "-1s", "1.2.3s", "s", ".5s", "1.0000000001s", "2ms"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn not_found_detection_matches_daprd_wording() {
        let err = |status: u16, code: Option<&str>, message: &str| DaprApiError {
            status: StatusCode::from_u16(status).unwrap(),
            error_code: code.map(str::to_owned),
            message: message.to_owned(),
        };
        assert!(is_job_not_found(&err(
            500,
            Some("DAPR_SCHEDULER_GET_JOB"),
            "failed to get job due to: rpc error: code = NotFound desc = job not found: r-1"
        )));
        assert!(is_job_not_found(&err(404, None, "")));
        assert!(!is_job_not_found(&err(
            500,
            Some("DAPR_SCHEDULER_GET_JOB"),
            "failed to get job due to: rpc error: code = Unavailable desc = connection refused"
        )));
        assert!(!is_job_not_found(&err(
            500,
            Some("ERR_OTHER"),
            "failed to get job due to: rpc error: code = NotFound desc = job not found: r-1"
        )));
    }
}
