//! The state API: get, save, delete, bulk get and transactions, with ETag concurrency.
//!
//! An ETag conflict is the one state failure callers must handle (re-read, then decide), so it
//! gets its own [`Error::EtagMismatch`] instead of hiding in a 409 inside [`Error::Api`].

use std::collections::BTreeMap;

use bytes::Bytes;
use http::header::{ETAG, IF_MATCH};
use http::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::client::{DaprClient, body, decode_json, require_non_empty};
use crate::error::Error;

/// daprd's separator between key prefix and key; a key containing it would be misread.
const KEY_SEPARATOR: &str = "||";

/// A value read from a state store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateItem {
    /// The stored bytes, exactly as daprd returned them.
    pub value: Bytes,
    /// The ETag to send back for an optimistic-concurrency write.
    pub etag: Option<String>,
}

impl StateItem {
    /// Decodes the value as JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        decode_json("state value", &self.value)
    }
}

/// What [`DaprClient::insert_state_if_absent`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Insert {
    /// The key was free; the item is stored now.
    Inserted,
    /// The key was taken; this is what it holds (nothing was written).
    Existing(StateItem),
}

impl Insert {
    /// Whether this call stored the item.
    pub fn is_inserted(&self) -> bool {
        matches!(self, Self::Inserted)
    }
}

/// One key to write.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SaveItem {
    /// The key, without the app-id prefix daprd adds.
    pub key: String,
    /// The value, stored as its JSON text.
    pub value: Value,
    /// Write only if the stored ETag still matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// Concurrency and consistency hints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<StateOptions>,
    /// Store-specific metadata, e.g. `ttlInSeconds`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
}

impl SaveItem {
    /// Writes `value` under `key`, last-write-wins unless told otherwise.
    pub fn new(key: impl Into<String>, value: Value) -> Self {
        Self {
            key: key.into(),
            value,
            etag: None,
            options: None,
            metadata: BTreeMap::new(),
        }
    }

    /// Writes `value` serialised as JSON under `key`.
    pub fn json<T: Serialize + ?Sized>(key: impl Into<String>, value: &T) -> Result<Self, Error> {
        let value = serde_json::to_value(value).map_err(|source| Error::Encode {
            what: "state value",
            source,
        })?;
        Ok(Self::new(key, value))
    }

    /// Writes only if the stored ETag is still `etag`.
    #[must_use]
    pub fn with_etag(mut self, etag: impl Into<String>) -> Self {
        self.etag = Some(etag.into());
        self
    }

    /// First write wins: with an ETag it must match, without one the key must not exist
    /// (store-specific: PostgreSQL v2 answers 500 rather than 409 for an existing key).
    #[must_use]
    pub fn first_write(mut self) -> Self {
        self.options_mut().concurrency = Some(Concurrency::FirstWrite);
        self
    }

    /// Last write wins (Dapr's default).
    #[must_use]
    pub fn last_write(mut self) -> Self {
        self.options_mut().concurrency = Some(Concurrency::LastWrite);
        self
    }

    /// Sets the consistency hint.
    #[must_use]
    pub fn with_consistency(mut self, consistency: Consistency) -> Self {
        self.options_mut().consistency = Some(consistency);
        self
    }

    /// Sets one metadata entry.
    #[must_use]
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// Lets the store expire the key after `seconds` (`ttlInSeconds`).
    #[must_use]
    pub fn with_ttl_seconds(self, seconds: u64) -> Self {
        self.with_metadata("ttlInSeconds", seconds.to_string())
    }

    fn options_mut(&mut self) -> &mut StateOptions {
        self.options.get_or_insert_with(StateOptions::default)
    }
}

/// Concurrency and consistency hints for one write.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateOptions {
    /// `first-write` or `last-write`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<Concurrency>,
    /// `eventual` or `strong`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistency: Option<Consistency>,
}

/// Which concurrent write wins.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Concurrency {
    /// The write must match the current ETag (or create the key).
    FirstWrite,
    /// The write overwrites whatever is there.
    LastWrite,
}

/// How consistent a write must be before daprd answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Consistency {
    /// Answer once one replica has it.
    Eventual,
    /// Answer once a quorum has it.
    Strong,
}

/// One operation of a state transaction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "operation", content = "request", rename_all = "lowercase")]
pub enum TransactionOperation {
    /// Write a key.
    Upsert(SaveItem),
    /// Delete a key, optionally only if its ETag matches.
    Delete {
        /// The key.
        key: String,
        /// Delete only if the stored ETag still matches.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        etag: Option<String>,
    },
}

impl TransactionOperation {
    fn key(&self) -> &str {
        match self {
            Self::Upsert(item) => &item.key,
            Self::Delete { key, .. } => key,
        }
    }
}

/// One entry of a bulk get; daprd names the value `data` (not `value`, as its docs say).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BulkStateItem {
    /// The key asked for.
    pub key: String,
    /// The value, absent when the key does not exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    /// The value's ETag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// Store metadata for the key.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// Why this key could not be read, if it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl BulkStateItem {
    /// Decodes `data` into `T`; `None` when the key does not exist.
    pub fn json<T: DeserializeOwned>(&self) -> Result<Option<T>, Error> {
        self.data
            .as_ref()
            .map(|data| {
                T::deserialize(data).map_err(|source| Error::Decode {
                    what: "bulk state value",
                    source,
                })
            })
            .transpose()
    }
}

#[derive(Serialize)]
struct BulkGetRequest<'a> {
    keys: &'a [&'a str],
}

#[derive(Serialize)]
struct TransactionRequest<'a> {
    operations: &'a [TransactionOperation],
}

impl DaprClient {
    /// Reads `key`; `None` when it does not exist (daprd answers 204).
    pub async fn get_state(&self, store: &str, key: &str) -> Result<Option<StateItem>, Error> {
        check_key(key)?;
        let url = self.state_url(store, &[key])?;
        let response = Self::send_ok(self.request(Method::GET, url)).await?;
        if response.status() == StatusCode::NO_CONTENT {
            return Ok(None);
        }
        let etag = response
            .headers()
            .get(ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let value = body(response).await?;
        Ok(Some(StateItem { value, etag }))
    }

    /// Writes `items`; a stale ETag fails the call with [`Error::EtagMismatch`].
    pub async fn save_state(&self, store: &str, items: &[SaveItem]) -> Result<(), Error> {
        for item in items {
            check_key(&item.key)?;
        }
        let url = self.state_url(store, &[])?;
        Self::send_empty(self.request(Method::POST, url).json(items))
            .await
            .map_err(etag_conflict)
    }

    /// Writes `item` only if its key does not exist yet (`first-write`, whatever `item` said);
    /// otherwise reports what is there. The item keeps its metadata, e.g. a TTL.
    ///
    /// This is the de-duplication primitive ("first delivery wins"). Stores report a refused
    /// `first-write` differently — PostgreSQL v2 answers a generic 500 ("no item was updated"),
    /// not an ETag error — so a failed write is followed by a read: a key that is there now was
    /// written by someone else, and any other failure (e.g. the database is down) stays an
    /// error for the caller to retry.
    pub async fn insert_state_if_absent(
        &self,
        store: &str,
        item: SaveItem,
    ) -> Result<Insert, Error> {
        let key = item.key.clone();
        let item = item.first_write();
        match self.save_state(store, std::slice::from_ref(&item)).await {
            Ok(()) => Ok(Insert::Inserted),
            Err(write_error) => match self.get_state(store, &key).await {
                Ok(Some(existing)) => Ok(Insert::Existing(existing)),
                Ok(None) | Err(_) => Err(write_error),
            },
        }
    }

    /// Deletes `key`, only if its ETag still matches when `etag` is given (sent as `If-Match`).
    pub async fn delete_state(
        &self,
        store: &str,
        key: &str,
        etag: Option<&str>,
    ) -> Result<(), Error> {
        check_key(key)?;
        let url = self.state_url(store, &[key])?;
        let mut request = self.request(Method::DELETE, url);
        if let Some(etag) = etag {
            request = request.header(IF_MATCH, etag);
        }
        Self::send_empty(request).await.map_err(etag_conflict)
    }

    /// Reads several keys at once; missing keys come back without `data`.
    pub async fn get_bulk_state(
        &self,
        store: &str,
        keys: &[&str],
    ) -> Result<Vec<BulkStateItem>, Error> {
        for key in keys {
            check_key(key)?;
        }
        let url = self.state_url(store, &["bulk"])?;
        let response = Self::send_ok(
            self.request(Method::POST, url)
                .json(&BulkGetRequest { keys }),
        )
        .await?;
        decode_json("bulk state response", &body(response).await?)
    }

    /// Applies `operations` atomically (the store must support transactions).
    pub async fn transact_state(
        &self,
        store: &str,
        operations: &[TransactionOperation],
    ) -> Result<(), Error> {
        for operation in operations {
            check_key(operation.key())?;
        }
        let url = self.state_url(store, &["transaction"])?;
        Self::send_empty(
            self.request(Method::POST, url)
                .json(&TransactionRequest { operations }),
        )
        .await
        .map_err(etag_conflict)
    }

    fn state_url(&self, store: &str, rest: &[&str]) -> Result<reqwest::Url, Error> {
        require_non_empty("state store name", store)?;
        self.url(
            ["v1.0", "state", store]
                .into_iter()
                .chain(rest.iter().copied()),
        )
    }
}

fn check_key(key: &str) -> Result<(), Error> {
    require_non_empty("state key", key)?;
    if key.contains(KEY_SEPARATOR) {
        return Err(Error::InvalidArgument(format!(
            "state key `{key}` contains `{KEY_SEPARATOR}`, which dapr reserves for its key prefix"
        )));
    }
    Ok(())
}

/// daprd reports a stale ETag as 409 on writes and deletes.
fn etag_conflict(error: Error) -> Error {
    match error {
        Error::Api(e) if e.status == StatusCode::CONFLICT => Error::EtagMismatch(e),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn save_item_serialises_only_what_is_set() {
        let item = SaveItem::new("k", json!({"a": 1}));
        assert_eq!(
            serde_json::to_value(&item).unwrap(),
            json!({"key": "k", "value": {"a": 1}})
        );

        let item = SaveItem::new("k", json!(1))
            .with_etag("7")
            .first_write()
            .with_consistency(Consistency::Strong)
            .with_ttl_seconds(30);
        assert_eq!(
            serde_json::to_value(&item).unwrap(),
            json!({
                "key": "k", "value": 1, "etag": "7",
                "options": {"concurrency": "first-write", "consistency": "strong"},
                "metadata": {"ttlInSeconds": "30"}
            })
        );
        let item = SaveItem::new("k", json!(1)).last_write();
        assert_eq!(
            serde_json::to_value(&item).unwrap()["options"],
            json!({"concurrency": "last-write"})
        );
    }

    #[test]
    fn transaction_operations_use_daprd_shape() {
        let ops = [
            TransactionOperation::Upsert(SaveItem::new("a", json!("x")).with_etag("1")),
            TransactionOperation::Delete {
                key: "b".into(),
                etag: None,
            },
            TransactionOperation::Delete {
                key: "c".into(),
                etag: Some("2".into()),
            },
        ];
        assert_eq!(
            serde_json::to_value(ops).unwrap(),
            json!([
                {"operation": "upsert", "request": {"key": "a", "value": "x", "etag": "1"}},
                {"operation": "delete", "request": {"key": "b"}},
                {"operation": "delete", "request": {"key": "c", "etag": "2"}}
            ])
        );
    }

    #[test]
    fn bulk_item_reads_data_field() {
        let items: Vec<BulkStateItem> = serde_json::from_value(json!([
            {"key": "a", "data": {"n": 1}, "etag": "3"},
            {"key": "b"}
        ]))
        .unwrap();
        assert_eq!(items[0].json::<Value>().unwrap(), Some(json!({"n": 1})));
        assert_eq!(items[0].etag.as_deref(), Some("3"));
        assert_eq!(items[1].json::<Value>().unwrap(), None);
    }

    #[test]
    fn keys_are_checked() {
        assert!(check_key("dedup-1").is_ok());
        assert!(matches!(check_key("a||b"), Err(Error::InvalidArgument(_))));
        assert!(matches!(check_key(""), Err(Error::InvalidArgument(_))));
    }
}
