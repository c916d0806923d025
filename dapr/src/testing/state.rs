//! The fake's state store, answering as daprd in front of `state.postgresql` v2 does: a missing
//! key reads as 204, a stale ETag is a 409, a refused `first-write` a generic 500, and one save
//! request is one transaction (all its items are checked before any is written).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use http::header::{ETAG, IF_MATCH};
use http::{Method, StatusCode};
use serde_json::{Value, json};

use super::{Answer, Recorded};

/// A stored value.
#[derive(Clone, Debug)]
pub struct Stored {
    /// The value as saved.
    pub value: Value,
    /// The ETag it has now.
    pub etag: String,
    /// The save item's `metadata` (`ttlInSeconds`, ...), `null` when it had none.
    pub metadata: Value,
    expires_at: Option<Instant>,
}

impl Stored {
    fn live(&self) -> bool {
        self.expires_at.is_none_or(|t| t > Instant::now())
    }
}

/// One item of a save request as received.
#[derive(Clone, Debug)]
pub struct Saved {
    /// The item as sent (`key`, `value`, `etag`, `options`, `metadata`).
    pub item: Value,
    /// The status its whole request was answered with.
    pub status: StatusCode,
}

/// Saves failing on purpose: how many more, and which items trigger them.
type FailingSaves = (usize, Box<dyn Fn(&Value) -> bool + Send>);

#[derive(Default)]
pub(super) struct StateStore {
    entries: BTreeMap<String, Stored>,
    next_etag: u64,
    pub(super) saves: Vec<Saved>,
    pub(super) deletes: Vec<(String, Option<String>)>,
    pub(super) down: bool,
    pub(super) failing_saves: Option<FailingSaves>,
    pub(super) write_before_next_save: Option<(String, Value)>,
}

impl StateStore {
    pub(super) fn live(&self, key: &str) -> Option<&Stored> {
        self.entries.get(key).filter(|stored| stored.live())
    }

    pub(super) fn snapshot(&self) -> BTreeMap<String, Stored> {
        self.entries
            .iter()
            .filter(|(_, stored)| stored.live())
            .map(|(key, stored)| (key.clone(), stored.clone()))
            .collect()
    }

    pub(super) fn put(&mut self, key: &str, value: Value, ttl: Option<Duration>) {
        let metadata = ttl.map_or(
            Value::Null,
            |ttl| json!({"ttlInSeconds": ttl.as_secs().to_string()}),
        );
        self.insert(key, value, metadata);
    }

    /// Stores with a fresh ETag and the TTL `metadata` asks for, as a successful save does.
    fn insert(&mut self, key: &str, value: Value, metadata: Value) {
        let ttl = metadata["ttlInSeconds"]
            .as_str()
            .and_then(|s| s.parse::<u64>().ok())
            .map(Duration::from_secs);
        self.next_etag += 1;
        let stored = Stored {
            value,
            etag: self.next_etag.to_string(),
            metadata,
            expires_at: ttl.map(|ttl| Instant::now() + ttl),
        };
        self.entries.insert(key.to_owned(), stored);
    }

    pub(super) fn expire(&mut self, key: &str) {
        if let Some(stored) = self.entries.get_mut(key) {
            stored.expires_at = Some(Instant::now() - Duration::from_millis(1));
        }
    }

    /// Answers `/v1.0/state/{store}/{rest..}`.
    pub(super) fn answer(&mut self, store: &str, rest: &[&str], request: &Recorded) -> Answer {
        if self.down {
            return Answer::dapr_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "ERR_STATE_SAVE",
                "failed to connect to the database: connection refused",
            );
        }
        match (&request.method, rest) {
            (&Method::GET, [key]) => self.get(key),
            (&Method::POST, []) => self.save(store, &request.json()),
            (&Method::POST, ["bulk"]) => self.get_bulk(&request.json()),
            (&Method::DELETE, [key]) => self.delete(key, request.header(IF_MATCH.as_str())),
            _ => super::routes::unknown(request),
        }
    }

    fn get(&self, key: &str) -> Answer {
        match self.live(key) {
            None => Answer::empty(StatusCode::NO_CONTENT),
            Some(stored) => Answer::new(StatusCode::OK, stored.value.to_string()).with_header(
                ETAG,
                // A counter's digits are always a valid header value.
                stored
                    .etag
                    .parse()
                    .unwrap_or(http::HeaderValue::from_static("0")),
            ),
        }
    }

    fn get_bulk(&self, request: &Value) -> Answer {
        let Some(keys) = request["keys"].as_array() else {
            return malformed("bulk get needs {\"keys\": [...]}");
        };
        let items: Vec<Value> = keys
            .iter()
            .filter_map(Value::as_str)
            .map(|key| match self.live(key) {
                Some(stored) => json!({"key": key, "data": stored.value, "etag": stored.etag}),
                None => json!({"key": key}),
            })
            .collect();
        Answer::json(StatusCode::OK, &Value::Array(items))
    }

    fn save(&mut self, store: &str, request: &Value) -> Answer {
        let Some(items) = request.as_array() else {
            return malformed("a save takes an array of items");
        };
        let Some(keys) = items
            .iter()
            .map(|item| item["key"].as_str())
            .collect::<Option<Vec<_>>>()
        else {
            return malformed("every save item needs a string key");
        };
        if let Some((key, value)) = self.write_before_next_save.take() {
            if keys.contains(&key.as_str()) {
                self.insert(&key, value, Value::Null);
            } else {
                self.write_before_next_save = Some((key, value));
            }
        }
        let answer = self.check(store, items, &keys);
        let status = answer
            .as_ref()
            .map_or(StatusCode::NO_CONTENT, Answer::status);
        self.saves.extend(items.iter().map(|item| Saved {
            item: item.clone(),
            status,
        }));
        if let Some(answer) = answer {
            return answer;
        }
        for (key, item) in keys.iter().zip(items) {
            self.insert(key, item["value"].clone(), item["metadata"].clone());
        }
        Answer::empty(StatusCode::NO_CONTENT)
    }

    /// Why the save request of `items` fails, if it does.
    fn check(&mut self, store: &str, items: &[Value], keys: &[&str]) -> Option<Answer> {
        if let Some((remaining, matches)) = &mut self.failing_saves
            && *remaining > 0
            && items.iter().any(matches)
        {
            *remaining -= 1;
            return Some(Answer::dapr_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "ERR_STATE_SAVE",
                "failed to connect to the database: connection refused",
            ));
        }
        for (key, item) in keys.iter().zip(items) {
            let live = self.live(key);
            let first_write = item["options"]["concurrency"] == "first-write";
            match item["etag"].as_str() {
                Some(etag) if live.is_none_or(|stored| stored.etag != etag) => {
                    return Some(Answer::dapr_error(
                        StatusCode::CONFLICT,
                        "ERR_STATE_SAVE",
                        "possible etag mismatch",
                    ));
                }
                None if first_write && live.is_some() => {
                    return Some(Answer::dapr_error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "ERR_STATE_SAVE",
                        &format!("failed saving state in state store {store}: no item was updated"),
                    ));
                }
                _ => {}
            }
        }
        None
    }

    fn delete(&mut self, key: &str, etag: Option<&str>) -> Answer {
        self.deletes.push((key.to_owned(), etag.map(str::to_owned)));
        if let Some(etag) = etag
            && self.live(key).is_none_or(|stored| stored.etag != etag)
        {
            return Answer::dapr_error(
                StatusCode::CONFLICT,
                "ERR_STATE_DELETE",
                "possible etag mismatch",
            );
        }
        self.entries.remove(key);
        Answer::empty(StatusCode::NO_CONTENT)
    }
}

fn malformed(message: &str) -> Answer {
    Answer::dapr_error(StatusCode::BAD_REQUEST, "ERR_MALFORMED_REQUEST", message)
}
