//! JSON bodies, path parameters and query strings with [`ApiError`] rejections.
//!
//! axum's own rejections answer plain text (and 422 for JSON of the wrong shape); these
//! extractors answer every unreadable request with a JSON `400 BAD_REQUEST` (or `413`), so
//! clients see one error format everywhere. [`ApiJson`] is also stricter than axum's `Json`: the
//! body must be a JSON *object* — serde reads a JSON array into a struct field by field, so
//! `["x"]` would be a task titled "x" — and when a request type refuses an unknown field that
//! another surface spells differently (`due_date` is the MCP tools' `due_at`), the message gives
//! the REST name.

use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use http::request::Parts;
use http::{HeaderMap, StatusCode, header};
use serde::de::{DeserializeOwned, IgnoredAny};
use serde_json::error::Category;

use super::ApiError;

/// Names the MCP tools use for REST fields: (their name, the REST name).
const FOREIGN_NAMES: &[(&str, &str)] = &[("due_date", "due_at"), ("query", "q")];

/// A JSON object request body; anything else answers `400 BAD_REQUEST` (`413` when too large).
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !has_json_content_type(req.headers()) {
            return Err(ApiError::BadRequest(
                "expected a JSON body (`Content-Type: application/json`)".to_owned(),
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            match rejection.status() {
                StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
                _ => ApiError::BadRequest(rejection.body_text()),
            }
        })?;
        json_object(&bytes).map(Self)
    }
}

/// Whether `headers` declare a JSON body: `application/json` or `application/<x>+json`, with
/// any parameters (the media types axum's `Json` accepts).
pub(crate) fn has_json_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence
        .strip_prefix("application/")
        .is_some_and(|subtype| subtype == "json" || subtype.ends_with("+json"))
}

/// Reads `bytes`, which must hold one JSON object, as a `T`.
fn json_object<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let first = bytes.iter().copied().find(|b| !b.is_ascii_whitespace());
    if first != Some(b'{') {
        return Err(not_an_object(bytes, first));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        body_error(&path, e.inner())
    })?;
    // What `serde_json::from_slice` checks too: nothing but whitespace after the object.
    de.end().map_err(|e| body_error(".", &e))?;
    Ok(value)
}

/// Why a body that does not start with `{` was refused: malformed JSON is reported as such,
/// well-formed JSON of another kind as not being an object.
fn not_an_object(bytes: &[u8], first: Option<u8>) -> ApiError {
    if let Err(e) = serde_json::from_slice::<IgnoredAny>(bytes) {
        return body_error(".", &e);
    }
    let kind = match first {
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    };
    ApiError::BadRequest(format!(
        "the request body must be a JSON object ({{\"field\": value, ...}}), not {kind}"
    ))
}

/// A body that is no valid JSON, or JSON that does not fit the request type at `path`.
fn body_error(path: &str, err: &serde_json::Error) -> ApiError {
    let message = match err.classify() {
        Category::Data => {
            let text = err.to_string();
            let at = if path == "." {
                String::new()
            } else {
                format!("`{path}`: ")
            };
            format!("invalid request body: {at}{text}{}", rest_name_hint(&text))
        }
        Category::Syntax | Category::Eof | Category::Io => {
            format!("the request body is not valid JSON: {err}")
        }
    };
    ApiError::BadRequest(message)
}

/// For serde's "unknown field `x`, expected …" about a name the MCP tools use, when the type
/// expects the REST spelling of it: a note naming that spelling. Empty otherwise.
fn rest_name_hint(message: &str) -> String {
    let Some((_, after)) = message.split_once("unknown field `") else {
        return String::new();
    };
    let unknown = after.split('`').next().unwrap_or_default();
    FOREIGN_NAMES
        .iter()
        .find(|(foreign, rest)| *foreign == unknown && message.contains(&format!("`{rest}`")))
        .map(|(foreign, rest)| {
            format!(" (`{foreign}` is the MCP tools' name; the REST API calls it `{rest}`)")
        })
        .unwrap_or_default()
}

/// Path parameters; a value of the wrong type (e.g. a non-UUID id) answers `400 BAD_REQUEST`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(Self(value)),
            Err(rejection) => Err(path_rejection(&rejection)),
        }
    }
}

fn path_rejection(rejection: &PathRejection) -> ApiError {
    if rejection.status().is_server_error() {
        // The route and the extractor disagree: our bug, not the client's.
        ApiError::Internal(rejection.body_text())
    } else {
        ApiError::BadRequest(rejection.body_text())
    }
}

/// The query string; bad values and keys the parameter type does not know (each refuses
/// unknown fields) answer `400 BAD_REQUEST`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(Self(value)),
            Err(rejection) => Err(query_rejection(&rejection)),
        }
    }
}

fn query_rejection(rejection: &QueryRejection) -> ApiError {
    let text = rejection.body_text();
    let hint = rest_name_hint(&text);
    ApiError::BadRequest(format!("{text}{hint}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Body {
        title: String,
        #[serde(default)]
        due_at: Option<String>,
    }

    fn message(err: ApiError) -> String {
        match err {
            ApiError::BadRequest(message) => message,
            other => panic!("not a bad request: {other:?}"),
        }
    }

    #[test]
    fn only_json_objects_are_bodies() {
        assert_eq!(
            json_object::<Body>(b" {\"title\": \"x\"} ").unwrap(),
            Body {
                title: "x".into(),
                due_at: None
            }
        );
        for (body, kind) in [
            (&b"[\"x\"]"[..], "an array"),
            (b"[\"t\", \"d\"]", "an array"),
            (b"\"x\"", "a string"),
            (b"42", "a number"),
            (b"true", "a boolean"),
            (b"null", "null"),
        ] {
            let text = message(json_object::<Body>(body).unwrap_err());
            assert!(text.contains("must be a JSON object"), "{text}");
            assert!(text.contains(kind), "{text}");
        }
        for malformed in [
            &b""[..],
            b"[1,",
            b"{\"title\": ",
            b"nope",
            b"{\"title\": \"x\"} x",
        ] {
            let text = message(json_object::<Body>(malformed).unwrap_err());
            assert!(text.contains("not valid JSON"), "{text}");
        }
        // Duplicate keys stay an error, as with `serde_json::from_slice`.
        assert!(json_object::<Body>(br#"{"title": "a", "title": "b"}"#).is_err());
    }

    #[test]
    fn unknown_fields_are_named_with_the_rest_spelling() {
        let text = message(json_object::<Body>(br#"{"title": "x", "due_date": "z"}"#).unwrap_err());
        assert!(text.contains("unknown field `due_date`"), "{text}");
        assert!(text.contains("the REST API calls it `due_at`"), "{text}");
        let text = message(json_object::<Body>(br#"{"title": "x", "colour": 1}"#).unwrap_err());
        assert!(text.contains("unknown field `colour`"), "{text}");
        assert!(!text.contains("REST API calls"), "{text}");
        // No hint towards a field the type does not have.
        assert_eq!(
            rest_name_hint("unknown field `query`, expected `name` or `color`"),
            ""
        );
        let text = message(json_object::<Body>(br#"{"title": 5}"#).unwrap_err());
        assert!(text.contains("`title`"), "{text}");
    }

    #[test]
    fn json_content_types() {
        let headers = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, value.parse().unwrap());
            headers
        };
        for ok in [
            "application/json",
            "Application/JSON; charset=utf-8",
            "application/merge-patch+json",
        ] {
            assert!(has_json_content_type(&headers(ok)), "{ok}");
        }
        for bad in ["text/plain", "application/jsonx", "text/json", "json"] {
            assert!(!has_json_content_type(&headers(bad)), "{bad}");
        }
        assert!(!has_json_content_type(&HeaderMap::new()));
    }
}
