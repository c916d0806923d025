//! Publishing events through the sidecar: single CloudEvents, plain JSON, and bulk.
//!
//! We publish in structured mode (`application/cloudevents+json`) so daprd keeps our own event
//! `id`: a retried publish then carries the same id and consumers can de-duplicate it. Plain JSON
//! publishing, where Dapr builds the envelope and picks a fresh id, is there for simple callers.

use std::collections::BTreeMap;

use http::Method;
use http::header::CONTENT_TYPE;
use reqwest::{RequestBuilder, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::client::{DaprClient, api_error, body, require_non_empty};
use crate::cloudevent::{APPLICATION_JSON, CLOUDEVENTS_JSON, CloudEvent, CloudEventError};
use crate::error::{DaprApiError, Error};

/// Per-request publish metadata, sent as `?metadata.<key>=<value>`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PublishOptions {
    /// Metadata keys without the `metadata.` prefix, e.g. `ttlInSeconds`.
    pub metadata: BTreeMap<String, String>,
}

impl PublishOptions {
    /// Sets one metadata entry.
    #[must_use]
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// Message TTL (`ttlInSeconds`); Dapr drops the message when it expires undelivered.
    #[must_use]
    pub fn ttl_seconds(self, seconds: u64) -> Self {
        self.with("ttlInSeconds", seconds.to_string())
    }

    /// Broker partition/ordering key (`partitionKey`, the Kafka record key).
    #[must_use]
    pub fn partition_key(self, key: &str) -> Self {
        self.with("partitionKey", key)
    }

    /// Publishes the body as-is, without a CloudEvent envelope (`rawPayload`).
    #[must_use]
    pub fn raw_payload(self, raw: bool) -> Self {
        self.with("rawPayload", raw.to_string())
    }

    /// The query pairs daprd expects.
    fn query(&self) -> Vec<(String, &str)> {
        self.metadata
            .iter()
            .map(|(k, v)| (format!("metadata.{k}"), v.as_str()))
            .collect()
    }

    fn apply(&self, request: RequestBuilder) -> RequestBuilder {
        if self.metadata.is_empty() {
            request
        } else {
            request.query(&self.query())
        }
    }
}

/// One entry of a bulk publish request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkPublishEntry {
    /// Unique within the request; failures are reported by it.
    pub entry_id: String,
    /// The event body (a CloudEvent object, or any JSON value).
    pub event: Value,
    /// Content type of `event`; `application/cloudevents+json` keeps our envelope.
    pub content_type: String,
    /// Per-entry metadata, overriding request-level keys.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
}

impl BulkPublishEntry {
    /// An entry carrying `event` in structured mode, keyed by the event id.
    pub fn from_cloud_event(event: &CloudEvent) -> Result<Self, CloudEventError> {
        let value = serde_json::to_value(event).map_err(|source| CloudEventError::Encode {
            what: "event",
            source,
        })?;
        Ok(Self {
            entry_id: event.id.clone(),
            event: value,
            content_type: CLOUDEVENTS_JSON.to_owned(),
            metadata: BTreeMap::new(),
        })
    }

    /// An entry carrying plain JSON that Dapr wraps in its own envelope.
    pub fn json(entry_id: impl Into<String>, data: Value) -> Self {
        Self {
            entry_id: entry_id.into(),
            event: data,
            content_type: APPLICATION_JSON.to_owned(),
            metadata: BTreeMap::new(),
        }
    }
}

/// What a bulk publish did not manage to publish; empty means everything was accepted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkPublishResponse {
    /// The entries the broker did not accept.
    #[serde(default)]
    pub failed_entries: Vec<FailedEntry>,
}

impl BulkPublishResponse {
    /// Whether every entry was published.
    pub fn is_success(&self) -> bool {
        self.failed_entries.is_empty()
    }
}

/// One entry the broker did not accept.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FailedEntry {
    /// The `entry_id` of the failed entry.
    pub entry_id: String,
    /// daprd's reason.
    #[serde(default)]
    pub error: String,
}

impl DaprClient {
    /// Publishes `event` as-is (structured mode), so its `id` survives; 204 means the broker has it.
    pub async fn publish_event(
        &self,
        pubsub: &str,
        topic: &str,
        event: &CloudEvent,
        options: &PublishOptions,
    ) -> Result<(), Error> {
        let body = serde_json::to_vec(event).map_err(|source| Error::Encode {
            what: "cloudevent",
            source,
        })?;
        self.post_publish(pubsub, topic, CLOUDEVENTS_JSON, body, options)
            .await
    }

    /// Publishes `data` as JSON; Dapr wraps it in a CloudEvent with an id of its own.
    pub async fn publish_json<T: Serialize + ?Sized>(
        &self,
        pubsub: &str,
        topic: &str,
        data: &T,
        options: &PublishOptions,
    ) -> Result<(), Error> {
        let body = serde_json::to_vec(data).map_err(|source| Error::Encode {
            what: "publish data",
            source,
        })?;
        self.post_publish(pubsub, topic, APPLICATION_JSON, body, options)
            .await
    }

    /// `POST /v1.0/publish/{pubsub}/{topic}` with `body` of `content_type`; 204 is success.
    async fn post_publish(
        &self,
        pubsub: &str,
        topic: &str,
        content_type: &'static str,
        body: Vec<u8>,
        options: &PublishOptions,
    ) -> Result<(), Error> {
        let request = self
            .request(
                Method::POST,
                self.publish_url(&["v1.0", "publish"], pubsub, topic)?,
            )
            .header(CONTENT_TYPE, content_type)
            .body(body);
        Self::send_empty(options.apply(request)).await
    }

    /// Publishes several entries in one request (alpha API).
    ///
    /// A partial or total broker failure is not an `Err`: daprd answers 500 with the failed
    /// entries, which come back in [`BulkPublishResponse::failed_entries`] so the caller can
    /// retry just those. Other failures (unknown pub/sub, forbidden topic, bad request) are `Err`.
    pub async fn publish_bulk(
        &self,
        pubsub: &str,
        topic: &str,
        entries: &[BulkPublishEntry],
        options: &PublishOptions,
    ) -> Result<BulkPublishResponse, Error> {
        let request = self
            .request(
                Method::POST,
                self.publish_url(&["v1.0-alpha1", "publish", "bulk"], pubsub, topic)?,
            )
            .json(entries);
        let response = Self::send(options.apply(request)).await?;
        let status = response.status();
        if status.is_success() {
            return Ok(BulkPublishResponse::default());
        }
        if status != StatusCode::INTERNAL_SERVER_ERROR {
            return Err(Error::Api(api_error(response).await));
        }
        let bytes = body(response).await?;
        match serde_json::from_slice::<BulkPublishResponse>(&bytes) {
            Ok(parsed) if !parsed.failed_entries.is_empty() => Ok(parsed),
            _ => Err(Error::Api(DaprApiError::from_response(status, &bytes))),
        }
    }

    /// `/<prefix>/<pubsub>/<topic>`, where the topic may itself contain `/` (daprd matches the rest).
    fn publish_url(
        &self,
        prefix: &[&str],
        pubsub: &str,
        topic: &str,
    ) -> Result<reqwest::Url, Error> {
        require_non_empty("pubsub name", pubsub)?;
        require_non_empty("topic", topic)?;
        self.url(
            prefix
                .iter()
                .copied()
                .chain([pubsub])
                .chain(topic.split('/')),
        )
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn options_helpers_fill_metadata() {
        let options = PublishOptions::default()
            .ttl_seconds(60)
            .partition_key("user-1");
        assert_eq!(
            options.query(),
            [
                ("metadata.partitionKey".to_owned(), "user-1"),
                ("metadata.ttlInSeconds".to_owned(), "60")
            ]
        );
    }

    #[test]
    fn bulk_entry_shapes() {
        let event = CloudEvent::new("e-1", "/todo/backend", "t");
        let entry = BulkPublishEntry::from_cloud_event(&event).unwrap();
        let json = serde_json::to_value(&entry).unwrap();
        assert_eq!(json["entryId"], "e-1");
        assert_eq!(json["contentType"], "application/cloudevents+json");
        assert_eq!(json["event"]["id"], "e-1");
        assert!(json.get("metadata").is_none());

        let entry = BulkPublishEntry::json("e-2", json!({"a": 1}));
        assert_eq!(
            serde_json::to_value(&entry).unwrap(),
            json!({"entryId": "e-2", "event": {"a": 1}, "contentType": "application/json"})
        );
    }
}
