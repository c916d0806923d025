//! CloudEvents 1.0 in structured JSON mode: what we publish and what Dapr delivers.
//!
//! A plain serde struct rather than the `cloudevents-sdk` crate: Dapr only ever speaks the JSON
//! form, we need its extension attributes (`traceparent`, `topic`, `pubsubname`, `expiration`)
//! kept on round trips, and `time` stays a string so an odd producer cannot make a delivery
//! undecodable.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_PAD_INDIFFERENT;
use chrono::{SecondsFormat, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The only CloudEvents version Dapr produces and accepts.
pub const SPEC_VERSION: &str = "1.0";
/// The content type of a structured-mode CloudEvent body.
pub const CLOUDEVENTS_JSON: &str = "application/cloudevents+json";
/// The content type we set for JSON `data`.
pub const APPLICATION_JSON: &str = "application/json";

/// A CloudEvents 1.0 event in structured JSON form.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CloudEvent {
    /// Unique per event from one source; consumers de-duplicate on it.
    pub id: String,
    /// Who produced the event, e.g. `/todo/backend`.
    pub source: String,
    /// CloudEvents version, always `1.0`.
    pub specversion: String,
    /// Event type, e.g. `com.todo.task.created.v1`.
    #[serde(rename = "type")]
    pub ty: String,
    /// What the event is about, e.g. a task id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// RFC 3339 production time, kept verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// Media type of `data`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datacontenttype: Option<String>,
    /// URI of the schema `data` follows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataschema: Option<String>,
    /// The payload as a JSON value (may be a string holding JSON, see [`CloudEvent::data_as`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    /// A binary payload, base64-encoded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_base64: Option<String>,
    /// W3C trace context the publisher ran in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    /// W3C vendor trace state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracestate: Option<String>,
    /// Topic the event was delivered on (set by Dapr).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// Pub/sub component the event came through (set by Dapr).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pubsubname: Option<String>,
    /// Every other attribute (e.g. Dapr's `traceid`, `expiration`), kept so nothing is lost.
    #[serde(flatten)]
    pub extensions: Map<String, Value>,
}

/// What is wrong with a CloudEvent or its payload.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CloudEventError {
    /// A required attribute is empty.
    #[error("cloudevent attribute `{0}` is required and empty")]
    MissingAttribute(&'static str),
    /// `specversion` is not `1.0`.
    #[error("cloudevent specversion `{0}` is not supported (expected `1.0`)")]
    UnsupportedSpecVersion(String),
    /// Both payload attributes are set; the spec allows one.
    #[error("cloudevent has both `data` and `data_base64`")]
    DataAndDataBase64,
    /// The event carries no payload but one was asked for.
    #[error("cloudevent has no `data` or `data_base64`")]
    MissingData,
    /// `data_base64` is not valid base64.
    #[error("cloudevent attribute `data_base64` is not valid base64")]
    InvalidBase64(#[source] base64::DecodeError),
    /// The payload did not decode into the requested type.
    #[error("cloudevent attribute `{attribute}` does not decode into the requested type")]
    DecodeData {
        /// Which attribute held the payload.
        attribute: &'static str,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// The payload is JSON but not an object, where an object was asked for.
    #[error("cloudevent payload must be a JSON object, not {0}")]
    DataNotAnObject(&'static str),
    /// A payload or event could not be encoded as JSON.
    #[error("cloudevent {what} could not be encoded as json")]
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
}

impl CloudEvent {
    /// A new event with `specversion` 1.0 and `time` set to now.
    pub fn new(id: impl Into<String>, source: impl Into<String>, ty: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            source: source.into(),
            specversion: SPEC_VERSION.to_owned(),
            ty: ty.into(),
            subject: None,
            time: Some(Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)),
            datacontenttype: None,
            dataschema: None,
            data: None,
            data_base64: None,
            traceparent: None,
            tracestate: None,
            topic: None,
            pubsubname: None,
            extensions: Map::new(),
        }
    }

    /// Sets `subject`.
    #[must_use]
    pub fn with_subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// Sets `data` to `data` as JSON and `datacontenttype` to `application/json`.
    pub fn with_json_data<T: Serialize + ?Sized>(
        mut self,
        data: &T,
    ) -> Result<Self, CloudEventError> {
        let value = serde_json::to_value(data).map_err(|source| CloudEventError::Encode {
            what: "data",
            source,
        })?;
        self.data = Some(value);
        self.data_base64 = None;
        self.datacontenttype = Some(APPLICATION_JSON.to_owned());
        Ok(self)
    }

    /// Sets (or clears) `traceparent`.
    #[must_use]
    pub fn with_traceparent(mut self, traceparent: Option<String>) -> Self {
        self.traceparent = traceparent;
        self
    }

    /// Checks the attributes the spec requires and that at most one payload attribute is set.
    pub fn validate(&self) -> Result<(), CloudEventError> {
        for (name, value) in [
            ("id", &self.id),
            ("source", &self.source),
            ("type", &self.ty),
        ] {
            if value.is_empty() {
                return Err(CloudEventError::MissingAttribute(name));
            }
        }
        if self.specversion != SPEC_VERSION {
            return Err(CloudEventError::UnsupportedSpecVersion(
                self.specversion.clone(),
            ));
        }
        if self.data.is_some() && self.data_base64.is_some() {
            return Err(CloudEventError::DataAndDataBase64);
        }
        Ok(())
    }

    /// Whether `datacontenttype` is JSON (absent counts as JSON, as the spec says for `data`).
    pub fn is_json(&self) -> bool {
        self.datacontenttype
            .as_deref()
            .is_none_or(is_json_content_type)
    }

    /// Decodes the payload into `T`.
    ///
    /// `data` is used as a JSON value; when it is a JSON *string* and the content type is JSON
    /// (some publishers send their JSON text as a string) the string is parsed as well.
    /// `data_base64` is decoded and parsed as JSON. With no payload, `T` is decoded from `null`,
    /// so `Option<T>` yields `None`.
    pub fn data_as<T: DeserializeOwned>(&self) -> Result<T, CloudEventError> {
        if let Some(encoded) = &self.data_base64 {
            let bytes = STANDARD_PAD_INDIFFERENT
                .decode(encoded.trim())
                .map_err(CloudEventError::InvalidBase64)?;
            return serde_json::from_slice(&bytes).map_err(|source| CloudEventError::DecodeData {
                attribute: "data_base64",
                source,
            });
        }
        let Some(data) = &self.data else {
            return serde_json::from_value(Value::Null).map_err(|_| CloudEventError::MissingData);
        };
        match T::deserialize(data) {
            Ok(value) => Ok(value),
            Err(direct) => match data {
                Value::String(text) if self.is_json() => serde_json::from_str(text),
                _ => Err(direct),
            }
            .map_err(|source| CloudEventError::DecodeData {
                attribute: "data",
                source,
            }),
        }
    }

    /// Decodes a payload that must be a JSON object into `T`, read as [`CloudEvent::data_as`]
    /// reads it.
    ///
    /// For payload types that are structs: serde's derived `Deserialize` also reads a JSON
    /// *array* into a struct, field by field, so `["x", …]` would pass for an object whose
    /// fields happen to line up. Such a payload is refused here as not an object.
    pub fn data_object_as<T: DeserializeOwned>(&self) -> Result<T, CloudEventError> {
        let value = match self.data_as::<Value>()? {
            // A publisher that sent its JSON text as a string, as `data_as` allows.
            Value::String(text) if self.data.is_some() && self.is_json() => {
                serde_json::from_str(&text).unwrap_or(Value::String(text))
            }
            other => other,
        };
        let kind = match &value {
            Value::Object(_) => None,
            Value::Array(_) => Some("an array"),
            Value::String(_) => Some("a string"),
            Value::Number(_) => Some("a number"),
            Value::Bool(_) => Some("a boolean"),
            Value::Null => Some("null"),
        };
        if let Some(kind) = kind {
            return Err(CloudEventError::DataNotAnObject(kind));
        }
        let attribute = if self.data_base64.is_some() {
            "data_base64"
        } else {
            "data"
        };
        T::deserialize(value).map_err(|source| CloudEventError::DecodeData { attribute, source })
    }
}

/// `application/json`, `text/json` and any `+json` suffix, ignoring parameters and case.
pub fn is_json_content_type(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json" || essence == "text/json" || essence.ends_with("+json")
}

#[cfg(test)]
mod props;

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Task {
        id: u32,
        title: String,
    }

    fn task() -> Task {
        Task {
            id: 7,
            title: "write tests".into(),
        }
    }

    #[test]
    fn new_sets_spec_version_and_time() {
        let event = CloudEvent::new("id-1", "/todo/backend", "com.todo.task.created.v1");
        assert_eq!(event.specversion, "1.0");
        let time = event.time.as_deref().unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(time).is_ok(), "{time}");
        event.validate().unwrap();
    }

    #[test]
    fn serde_round_trip_keeps_extensions_and_skips_nones() {
        let event = CloudEvent::new("id-1", "/todo/backend", "com.todo.task.created.v1")
            .with_subject("7")
            .with_traceparent(Some(
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into(),
            ))
            .with_json_data(&task())
            .unwrap();
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["type"], "com.todo.task.created.v1");
        assert_eq!(json["datacontenttype"], "application/json");
        assert_eq!(json["data"], json!({"id": 7, "title": "write tests"}));
        assert!(json.get("data_base64").is_none());
        assert!(json.get("topic").is_none());
        assert_eq!(serde_json::from_value::<CloudEvent>(json).unwrap(), event);

        // As Dapr delivers it: extra attributes land in `extensions` and are written back.
        let delivered = json!({
            "id": "x", "source": "backend", "specversion": "1.0", "type": "t",
            "topic": "task-events", "pubsubname": "pubsub",
            "traceid": "00-abc-def-01", "expiration": "2030-01-01T00:00:00Z",
            "time": "not really a time", "data": {"id": 1, "title": "a"}
        });
        let event: CloudEvent = serde_json::from_value(delivered.clone()).unwrap();
        assert_eq!(event.topic.as_deref(), Some("task-events"));
        assert_eq!(event.time.as_deref(), Some("not really a time"));
        assert_eq!(event.extensions["traceid"], "00-abc-def-01");
        assert_eq!(serde_json::to_value(&event).unwrap(), delivered);
    }

    #[test]
    fn data_object_as_refuses_what_is_not_an_object() {
        let mut event = CloudEvent::new("i", "s", "t")
            .with_json_data(&task())
            .unwrap();
        assert_eq!(event.data_object_as::<Task>().unwrap(), task());
        event.data = Some(Value::String(r#"{"id":7,"title":"write tests"}"#.into()));
        assert_eq!(event.data_object_as::<Task>().unwrap(), task());

        // `data_as` reads a positional array into the struct; `data_object_as` does not.
        event.data = Some(serde_json::json!([7, "write tests"]));
        assert_eq!(event.data_as::<Task>().unwrap(), task());
        for (data, kind) in [
            (serde_json::json!([7, "write tests"]), "an array"),
            (serde_json::json!("[7,\"write tests\"]"), "an array"),
            (serde_json::json!("plain text"), "a string"),
            (serde_json::json!(7), "a number"),
            (Value::Null, "null"),
        ] {
            event.data = Some(data);
            let err = event.data_object_as::<Task>().unwrap_err();
            assert!(
                matches!(err, CloudEventError::DataNotAnObject(k) if k == kind),
                "{err}"
            );
        }
        event.data = None;
        event.data_base64 = Some(STANDARD_PAD_INDIFFERENT.encode(br#"[7, "write tests"]"#));
        assert!(matches!(
            event.data_object_as::<Task>(),
            Err(CloudEventError::DataNotAnObject("an array"))
        ));
    }

    #[test]
    fn data_as_reads_json_values_json_strings_and_base64() {
        let mut event = CloudEvent::new("i", "s", "t")
            .with_json_data(&task())
            .unwrap();
        assert_eq!(event.data_as::<Task>().unwrap(), task());

        // A publisher that sent its JSON text as a string.
        event.data = Some(Value::String(r#"{"id":7,"title":"write tests"}"#.into()));
        assert_eq!(event.data_as::<Task>().unwrap(), task());
        // ... and a plain string still decodes as a string.
        event.data = Some(Value::String("hello".into()));
        assert_eq!(event.data_as::<String>().unwrap(), "hello");

        // A string is not re-parsed when the content type says it is text.
        event.datacontenttype = Some("text/plain".into());
        event.data = Some(Value::String(r#"{"id":7,"title":"write tests"}"#.into()));
        let err = event.data_as::<Task>().unwrap_err();
        assert!(
            matches!(
                err,
                CloudEventError::DecodeData {
                    attribute: "data",
                    ..
                }
            ),
            "{err:?}"
        );

        event.data = None;
        event.data_base64 =
            Some(STANDARD_PAD_INDIFFERENT.encode(br#"{"id":7,"title":"write tests"}"#));
        assert_eq!(event.data_as::<Task>().unwrap(), task());

        event.data_base64 = Some("!!!".into());
        assert!(matches!(
            event.data_as::<Task>(),
            Err(CloudEventError::InvalidBase64(_))
        ));

        event.data_base64 = None;
        assert_eq!(event.data_as::<Option<Task>>().unwrap(), None);
        assert!(matches!(
            event.data_as::<Task>(),
            Err(CloudEventError::MissingData)
        ));
    }

    #[test]
    fn validate_names_the_bad_attribute() {
        let ok = CloudEvent::new("i", "s", "t");
        let mut e = ok.clone();
        e.id.clear();
        assert!(matches!(
            e.validate(),
            Err(CloudEventError::MissingAttribute("id"))
        ));
        let mut e = ok.clone();
        e.source.clear();
        assert!(matches!(
            e.validate(),
            Err(CloudEventError::MissingAttribute("source"))
        ));
        let mut e = ok.clone();
        e.ty.clear();
        let err = e.validate().unwrap_err();
        assert_eq!(
            err.to_string(),
            "cloudevent attribute `type` is required and empty"
        );
        let mut e = ok.clone();
        e.specversion = "0.3".into();
        assert!(
            matches!(e.validate(), Err(CloudEventError::UnsupportedSpecVersion(v)) if v == "0.3")
        );
        let mut e = ok;
        e.data = Some(json!(1));
        e.data_base64 = Some("MQ==".into());
        assert!(matches!(
            e.validate(),
            Err(CloudEventError::DataAndDataBase64)
        ));
    }

    #[test]
    fn json_content_types() {
        assert!(is_json_content_type("application/json"));
        assert!(is_json_content_type("Application/JSON; charset=utf-8"));
        assert!(is_json_content_type("application/cloudevents+json"));
        assert!(!is_json_content_type("text/plain"));
        assert!(!is_json_content_type("application/octet-stream"));
    }
}
