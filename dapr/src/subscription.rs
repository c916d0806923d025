//! The app's pub/sub subscriptions, declared once and rendered two ways.
//!
//! Local runs answer daprd's `GET /dapr/subscribe` (programmatic subscriptions); the Helm chart
//! ships `dapr.io/v2alpha1` `Subscription` resources (declarative, scoped). Both come from the
//! same [`SubscriptionTable`] so the two forms cannot drift apart.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::Router;
use axum::http::header::CONTENT_TYPE;
use axum::routing::get;
use serde::Serialize;
use serde_json::Value;

use crate::cloudevent::APPLICATION_JSON;
use crate::error::Error;

/// Path daprd reads programmatic subscriptions from.
pub const SUBSCRIBE_PATH: &str = "/dapr/subscribe";

/// Longest Kubernetes object name (DNS-1123 subdomain).
const MAX_NAME_LEN: usize = 253;

/// One topic this app consumes, and the route daprd delivers it to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscription {
    /// Pub/sub component name.
    pub pubsubname: String,
    /// Topic name.
    pub topic: String,
    /// App path daprd POSTs each event to, e.g. `/events/task`.
    pub route: String,
    /// Topic that failed (or `DROP`ped) events are forwarded to.
    pub dead_letter_topic: Option<String>,
    /// Subscription metadata, e.g. `rawPayload`.
    pub metadata: BTreeMap<String, String>,
}

impl Subscription {
    /// Delivers `topic` of component `pubsub` to `route`.
    pub fn new(
        pubsub: impl Into<String>,
        topic: impl Into<String>,
        route: impl Into<String>,
    ) -> Self {
        Self {
            pubsubname: pubsub.into(),
            topic: topic.into(),
            route: route.into(),
            dead_letter_topic: None,
            metadata: BTreeMap::new(),
        }
    }

    /// Forwards undeliverable events to `topic`.
    #[must_use]
    pub fn with_dead_letter_topic(mut self, topic: impl Into<String>) -> Self {
        self.dead_letter_topic = Some(topic.into());
        self
    }

    /// Sets one metadata entry.
    #[must_use]
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }
}

/// All of an app's subscriptions; cheap to clone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SubscriptionTable {
    entries: Arc<Vec<Subscription>>,
}

impl SubscriptionTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a subscription.
    #[must_use]
    #[allow(
        clippy::should_implement_trait,
        reason = "`add` is the agreed builder name; `table + subscription` would read oddly"
    )]
    pub fn add(mut self, subscription: Subscription) -> Self {
        Arc::make_mut(&mut self.entries).push(subscription);
        self
    }

    /// The subscriptions, in the order added.
    pub fn iter(&self) -> impl Iterator<Item = &Subscription> {
        self.entries.iter()
    }

    /// The body of `GET /dapr/subscribe`: an array of
    /// `{pubsubname, topic, route, deadLetterTopic?, metadata?}`.
    pub fn to_json(&self) -> Value {
        Value::Array(
            self.iter()
                .map(|s| {
                    let mut entry = serde_json::Map::new();
                    entry.insert("pubsubname".into(), s.pubsubname.clone().into());
                    entry.insert("topic".into(), s.topic.clone().into());
                    entry.insert("route".into(), s.route.clone().into());
                    if let Some(dlq) = &s.dead_letter_topic {
                        entry.insert("deadLetterTopic".into(), dlq.clone().into());
                    }
                    if !s.metadata.is_empty() {
                        let metadata = s
                            .metadata
                            .iter()
                            .map(|(k, v)| (k.clone(), v.clone().into()));
                        entry.insert("metadata".into(), Value::Object(metadata.collect()));
                    }
                    Value::Object(entry)
                })
                .collect(),
        )
    }

    /// A router serving `GET /dapr/subscribe` with this table (200 and the JSON array).
    pub fn router<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        // Rendered once: daprd asks once per sidecar start and the table never changes.
        let body = self.to_json().to_string();
        Router::new().route(
            SUBSCRIBE_PATH,
            get(move || {
                let body = body.clone();
                async move { ([(CONTENT_TYPE, APPLICATION_JSON)], body) }
            }),
        )
    }

    /// One `dapr.io/v2alpha1` `Subscription` document per entry, joined by `---`, each limited
    /// to `scopes` (the app ids allowed to use it; empty means every app).
    ///
    /// `metadata.name` is `<scopes>-<topic>` made Kubernetes-safe; two entries that would get the
    /// same name are an error, because one resource would silently replace the other.
    pub fn to_declarative_yaml(&self, scopes: &[String]) -> Result<String, Error> {
        let mut names = BTreeSet::new();
        let mut documents = Vec::with_capacity(self.entries.len());
        for subscription in self.iter() {
            let name = resource_name(scopes, &subscription.topic)?;
            if !names.insert(name.clone()) {
                return Err(Error::InvalidArgument(format!(
                    "two subscriptions would both be named `{name}`"
                )));
            }
            let resource = DeclarativeSubscription {
                api_version: "dapr.io/v2alpha1",
                kind: "Subscription",
                metadata: ObjectMeta { name },
                spec: DeclarativeSpec {
                    pubsubname: &subscription.pubsubname,
                    topic: &subscription.topic,
                    routes: Routes {
                        default: &subscription.route,
                    },
                    dead_letter_topic: subscription.dead_letter_topic.as_deref(),
                    metadata: &subscription.metadata,
                },
                scopes,
            };
            let yaml = serde_yaml_ng::to_string(&resource).map_err(|source| Error::Yaml {
                what: "subscription",
                source,
            })?;
            documents.push(yaml);
        }
        Ok(documents.join("---\n"))
    }
}

/// `<scopes>-<topic>`, lower-cased, with anything outside `[a-z0-9-.]` turned into `-`.
fn resource_name(scopes: &[String], topic: &str) -> Result<String, Error> {
    let raw = scopes
        .iter()
        .map(String::as_str)
        .chain([topic])
        .collect::<Vec<_>>()
        .join("-");
    let name: String = raw
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let name = name
        .trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_owned();
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(Error::InvalidArgument(format!(
            "cannot derive a kubernetes name from scopes {scopes:?} and topic `{topic}`"
        )));
    }
    Ok(name)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DeclarativeSubscription<'a> {
    api_version: &'static str,
    kind: &'static str,
    metadata: ObjectMeta,
    spec: DeclarativeSpec<'a>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    scopes: &'a [String],
}

#[derive(Serialize)]
struct ObjectMeta {
    name: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DeclarativeSpec<'a> {
    pubsubname: &'a str,
    topic: &'a str,
    routes: Routes<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dead_letter_topic: Option<&'a str>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    metadata: &'a BTreeMap<String, String>,
}

#[derive(Serialize)]
struct Routes<'a> {
    default: &'a str,
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use http_body_util::BodyExt;
    use serde::Deserialize;
    use serde_json::json;
    use tower::ServiceExt;

    use super::*;

    fn table() -> SubscriptionTable {
        SubscriptionTable::new()
            .add(
                Subscription::new("pubsub", "task-events", "/events/task")
                    .with_dead_letter_topic("task-events-dlq"),
            )
            .add(
                Subscription::new("pubsub", "task-reminders", "/events/reminder")
                    .with_metadata("rawPayload", "false"),
            )
    }

    #[test]
    fn json_is_daprd_subscribe_shape() {
        assert_eq!(
            table().to_json(),
            json!([
                {"pubsubname": "pubsub", "topic": "task-events", "route": "/events/task",
                 "deadLetterTopic": "task-events-dlq"},
                {"pubsubname": "pubsub", "topic": "task-reminders", "route": "/events/reminder",
                 "metadata": {"rawPayload": "false"}}
            ])
        );
    }

    #[tokio::test]
    async fn router_serves_the_table() {
        let router: Router = table().router();
        let response = router
            .oneshot(Request::get("/dapr/subscribe").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[CONTENT_TYPE], "application/json");
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body, table().to_json());
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct ParsedResource {
        api_version: String,
        kind: String,
        metadata: ParsedMeta,
        spec: ParsedSpec,
        #[serde(default)]
        scopes: Vec<String>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct ParsedMeta {
        name: String,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct ParsedSpec {
        pubsubname: String,
        topic: String,
        routes: BTreeMap<String, String>,
        dead_letter_topic: Option<String>,
        #[serde(default)]
        metadata: BTreeMap<String, String>,
    }

    #[test]
    fn yaml_and_json_describe_the_same_subscriptions() {
        let scopes = vec!["notification".to_owned()];
        let yaml = table().to_declarative_yaml(&scopes).unwrap();
        let parsed: Vec<ParsedResource> = serde_yaml_ng::Deserializer::from_str(&yaml)
            .map(|doc| ParsedResource::deserialize(doc).unwrap())
            .collect();

        let from_yaml: Vec<Value> = parsed
            .iter()
            .map(|r| {
                assert_eq!(r.api_version, "dapr.io/v2alpha1");
                assert_eq!(r.kind, "Subscription");
                assert_eq!(r.scopes, scopes);
                assert_eq!(r.spec.routes.len(), 1, "only a default route");
                let mut entry = json!({
                    "pubsubname": r.spec.pubsubname,
                    "topic": r.spec.topic,
                    "route": r.spec.routes["default"],
                });
                if let Some(dlq) = &r.spec.dead_letter_topic {
                    entry["deadLetterTopic"] = json!(dlq);
                }
                if !r.spec.metadata.is_empty() {
                    entry["metadata"] = json!(r.spec.metadata);
                }
                entry
            })
            .collect();
        assert_eq!(Value::Array(from_yaml), table().to_json());

        let names: Vec<&str> = parsed.iter().map(|r| r.metadata.name.as_str()).collect();
        assert_eq!(
            names,
            ["notification-task-events", "notification-task-reminders"]
        );
    }

    #[test]
    fn yaml_names_are_kubernetes_safe_and_unique() {
        let yaml = SubscriptionTable::new()
            .add(Subscription::new("pubsub", "Task_Events", "/e"))
            .to_declarative_yaml(&[])
            .unwrap();
        assert!(yaml.contains("name: task-events\n"), "{yaml}");
        assert!(!yaml.contains("scopes"), "{yaml}");

        let clash = SubscriptionTable::new()
            .add(Subscription::new("kafka", "orders", "/a"))
            .add(Subscription::new("redis", "orders", "/b"))
            .to_declarative_yaml(&[]);
        assert!(matches!(clash, Err(Error::InvalidArgument(_))));
    }
}
