//! Turning a delivery's headers and (already size-limited) body into a validated [`CloudEvent`].

use std::borrow::Cow;

use dapr::CloudEvent;
use http::{HeaderMap, header};
use serde_json::{Map, Value};

/// Why a delivery is not a usable CloudEvent, with what could be learnt about it for the log.
#[derive(Debug)]
pub(crate) struct Rejected {
    pub(crate) reason: Cow<'static, str>,
    pub(crate) id: Option<String>,
    pub(crate) topic: Option<String>,
    pub(crate) ty: Option<String>,
}

impl Rejected {
    pub(crate) fn new(reason: impl Into<Cow<'static, str>>) -> Self {
        Self {
            reason: reason.into(),
            id: None,
            topic: None,
            ty: None,
        }
    }

    fn about(mut self, id: Option<&str>, topic: Option<&str>, ty: Option<&str>) -> Self {
        self.id = id.map(str::to_owned);
        self.topic = topic.map(str::to_owned);
        self.ty = ty.map(str::to_owned);
        self
    }
}

/// The media type of `headers`' Content-Type, lower-cased, without parameters.
fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let essence = value.split(';').next().unwrap_or_default().trim();
    Some(essence.to_ascii_lowercase())
}

/// Decodes a structured-mode or binary-mode CloudEvent and validates it.
pub(crate) fn decode(headers: &HeaderMap, body: &[u8]) -> Result<CloudEvent, Rejected> {
    let media = media_type(headers);
    match media.as_deref() {
        Some("application/cloudevents-batch+json") => {
            Err(Rejected::new("batched cloudevents are not supported"))
        }
        Some("application/cloudevents+json") => structured(body),
        _ if headers.contains_key("ce-specversion") => binary(headers, media.as_deref(), body),
        Some(m) if dapr::is_json_content_type(m) => structured(body),
        // Dapr always sets a content type; be lenient with a missing one if the body says.
        None => structured(body),
        Some(_) => Err(Rejected::new(
            "request is neither a structured nor a binary cloudevent",
        )),
    }
}

fn structured(body: &[u8]) -> Result<CloudEvent, Rejected> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| Rejected::new(format!("body is not valid json: {e}")))?;
    let Value::Object(object) = value else {
        return Err(Rejected::new("body is not a json object"));
    };
    let attr = |name| object.get(name).and_then(Value::as_str).map(str::to_owned);
    let (id, topic, ty) = (attr("id"), attr("topic"), attr("type"));
    let about = |r: Rejected| r.about(id.as_deref(), topic.as_deref(), ty.as_deref());
    if !object.contains_key("specversion") {
        return Err(about(Rejected::new(
            "json body has no specversion attribute",
        )));
    }
    let event: CloudEvent = serde_json::from_value(Value::Object(object))
        .map_err(|e| about(Rejected::new(format!("malformed cloudevent: {e}"))))?;
    validated(event)
}

fn binary(headers: &HeaderMap, media: Option<&str>, body: &[u8]) -> Result<CloudEvent, Rejected> {
    let ce = |name: &str| {
        headers
            .get(format!("ce-{name}"))
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (id, source, ty, specversion) = (ce("id"), ce("source"), ce("type"), ce("specversion"));
    let topic = ce("topic");
    let (Some(id_value), Some(source), Some(ty_value), Some(specversion)) =
        (id.clone(), source, ty.clone(), specversion)
    else {
        return Err(Rejected::new(
            "binary cloudevent lacks one of ce-id, ce-source, ce-type, ce-specversion",
        )
        .about(id.as_deref(), topic.as_deref(), ty.as_deref()));
    };
    let about = |r: Rejected| r.about(id.as_deref(), topic.as_deref(), ty.as_deref());

    let mut event = CloudEvent::new(id_value, source, ty_value);
    event.specversion = specversion;
    let mut extensions = Map::new();
    for (name, value) in headers {
        let Some(attr) = name.as_str().strip_prefix("ce-") else {
            continue;
        };
        let Ok(value) = value.to_str() else {
            return Err(about(Rejected::new(format!(
                "header ce-{attr} is not visible ascii"
            ))));
        };
        let value = value.to_owned();
        match attr {
            "id" | "source" | "type" | "specversion" => {}
            "subject" => event.subject = Some(value),
            "time" => event.time = Some(value),
            "dataschema" => event.dataschema = Some(value),
            "traceparent" => event.traceparent = Some(value),
            "tracestate" => event.tracestate = Some(value),
            "topic" => event.topic = Some(value),
            "pubsubname" => event.pubsubname = Some(value),
            other => {
                extensions.insert(other.to_owned(), Value::String(value));
            }
        }
    }
    event.extensions = extensions;

    if !body.is_empty() {
        match media {
            Some(m) if dapr::is_json_content_type(m) => {
                let data = serde_json::from_slice(body)
                    .map_err(|e| about(Rejected::new(format!("data is not valid json: {e}"))))?;
                event.data = Some(data);
            }
            Some(m) if m.starts_with("text/") => match std::str::from_utf8(body) {
                Ok(text) => event.data = Some(Value::from(text)),
                Err(_) => event.data_base64 = Some(base64(body)),
            },
            _ => event.data_base64 = Some(base64(body)),
        }
    }
    event.datacontenttype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    validated(event)
}

fn validated(event: CloudEvent) -> Result<CloudEvent, Rejected> {
    match event.validate() {
        Ok(()) => Ok(event),
        Err(e) => Err(Rejected::new(format!("invalid cloudevent: {e}")).about(
            Some(&event.id),
            event.topic.as_deref(),
            Some(&event.ty),
        )),
    }
}

/// Standard base64 with padding, for binary-mode data that is neither JSON nor text.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 0x3f) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    http::HeaderName::from_static(k),
                    HeaderValue::from_static(v),
                )
            })
            .collect()
    }

    const STRUCTURED: &str = r#"{"specversion":"1.0","id":"e-1","source":"/todo/backend",
        "type":"com.todo.task.created.v1","topic":"task-events","pubsubname":"pubsub",
        "datacontenttype":"application/json","data":{"task_id":7},"traceid":"x"}"#;

    #[test]
    fn structured_mode_decodes_attributes_and_extensions() {
        let h = headers(&[(
            "content-type",
            "application/cloudevents+json; charset=utf-8",
        )]);
        let event = decode(&h, STRUCTURED.as_bytes()).unwrap();
        assert_eq!(event.id, "e-1");
        assert_eq!(event.ty, "com.todo.task.created.v1");
        assert_eq!(event.topic.as_deref(), Some("task-events"));
        assert_eq!(event.data, Some(serde_json::json!({"task_id": 7})));
        assert_eq!(event.extensions.get("traceid"), Some(&Value::from("x")));
    }

    #[test]
    fn plain_json_with_specversion_is_structured() {
        let h = headers(&[("content-type", "application/json")]);
        assert!(decode(&h, STRUCTURED.as_bytes()).is_ok());
        let err = decode(&h, br#"{"id":"1","topic":"t"}"#).unwrap_err();
        assert!(err.reason.contains("specversion"), "{}", err.reason);
        assert_eq!(
            (err.id.as_deref(), err.topic.as_deref()),
            (Some("1"), Some("t"))
        );
    }

    #[test]
    fn binary_mode_maps_headers() {
        let h = headers(&[
            ("content-type", "application/json"),
            ("ce-id", "b-1"),
            ("ce-source", "/todo/backend"),
            ("ce-type", "com.todo.task.updated.v1"),
            ("ce-specversion", "1.0"),
            ("ce-subject", "task-7"),
            ("ce-topic", "task-events"),
            ("ce-partitionkey", "user-1"),
        ]);
        let event = decode(&h, br#"{"a":1}"#).unwrap();
        assert_eq!(event.id, "b-1");
        assert_eq!(event.subject.as_deref(), Some("task-7"));
        assert_eq!(event.topic.as_deref(), Some("task-events"));
        assert_eq!(event.data, Some(serde_json::json!({"a": 1})));
        assert_eq!(event.datacontenttype.as_deref(), Some("application/json"));
        assert_eq!(
            event.extensions.get("partitionkey"),
            Some(&Value::from("user-1"))
        );
    }

    #[test]
    fn binary_mode_text_and_bytes() {
        let base = [
            ("ce-id", "b-2"),
            ("ce-source", "s"),
            ("ce-type", "t"),
            ("ce-specversion", "1.0"),
        ];
        let mut h = headers(&base);
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        let event = decode(&h, b"hello").unwrap();
        assert_eq!(event.data, Some(Value::from("hello")));

        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        let event = decode(&h, &[0xff, 0x00, 0x10, 0x20]).unwrap();
        assert_eq!(event.data_base64.as_deref(), Some("/wAQIA=="));
    }

    #[test]
    fn binary_mode_requires_core_attributes() {
        let h = headers(&[("ce-specversion", "1.0"), ("ce-id", "b-3")]);
        let err = decode(&h, b"").unwrap_err();
        assert!(err.reason.contains("ce-source"), "{}", err.reason);
        assert_eq!(err.id.as_deref(), Some("b-3"));
    }

    #[test]
    fn rejects_garbage_and_invalid_events() {
        let h = headers(&[("content-type", "application/cloudevents+json")]);
        assert!(decode(&h, b"{not json").is_err());
        assert!(decode(&h, b"[1,2]").is_err());
        let missing_source = r#"{"specversion":"1.0","id":"x","type":"t","source":""}"#;
        let err = decode(&h, missing_source.as_bytes()).unwrap_err();
        assert!(
            err.reason.starts_with("invalid cloudevent"),
            "{}",
            err.reason
        );
        assert_eq!(err.id.as_deref(), Some("x"));
        let wrong_type = r#"{"specversion":"1.0","id":5,"type":"t","source":"s"}"#;
        assert!(decode(&h, wrong_type.as_bytes()).is_err());

        let h = headers(&[("content-type", "text/plain")]);
        assert!(decode(&h, b"hi").is_err());
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), expected);
        }
    }
}
