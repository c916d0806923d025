//! An in-process subscriber with its own sidecar: records every CloudEvent daprd delivers on
//! the topics it is given, in arrival order, so a test can see what other services published.
//!
//! It has its own app-id, so it is a separate consumer group and gets a copy of every event
//! without taking any away from the services under test.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::post;
use dapr::{CloudEvent, Subscription, SubscriptionTable};
use harness::{Daprd, Infra, wait};
use middleware::{CloudEventLayer, DaprStatus, DaprStatusLayer, Event};
use serde_json::Value;
use tower::ServiceBuilder;

/// Events seen, in arrival order, with the topic whose subscription delivered each.
///
/// The subscription's topic, not the event's `topic` attribute: an event moved to a
/// dead-letter topic keeps the attribute of the topic it was first published to.
#[derive(Clone, Default)]
pub(crate) struct Observed(Arc<Mutex<Vec<(String, CloudEvent)>>>);

impl Observed {
    /// Events delivered through the subscription to `topic` that match `pred`.
    pub(crate) fn matching(
        &self,
        topic: &str,
        pred: impl Fn(&CloudEvent) -> bool,
    ) -> Vec<CloudEvent> {
        self.0
            .lock()
            .expect("observer lock")
            .iter()
            .filter(|(t, e)| t == topic && pred(e))
            .map(|(_, e)| e.clone())
            .collect()
    }
}

/// The observer app and its sidecar.
pub(crate) struct Observer {
    /// What it saw.
    pub(crate) seen: Observed,
    // The sidecar lives exactly as long as the observer.
    daprd: Daprd,
}

async fn record(
    State(seen): State<Observed>,
    Path(topic): Path<String>,
    event: Event<Value>,
) -> DaprStatus {
    seen.0
        .lock()
        .expect("observer lock")
        .push((topic, event.event));
    DaprStatus::Success
}

impl Observer {
    /// The observer sidecar's HTTP API, e.g. to publish test events straight to the broker.
    pub(crate) fn http_endpoint(&self) -> String {
        self.daprd.http_endpoint()
    }

    /// Starts the observer app on a free port and a sidecar `app_id` subscribed to `topics`.
    pub(crate) async fn start(
        infra: &Infra,
        app_id: &str,
        topics: &[&str],
    ) -> anyhow::Result<Self> {
        Self::start_with(infra, app_id, topics, None).await
    }

    /// [`Observer::start`] whose sidecar reads one delivery at a time where the broker would
    /// otherwise deliver side by side (RabbitMQ: `concurrencyMode: single` in its own copy of
    /// the resources), so events arrive in the order of the queue.
    pub(crate) async fn start_in_order(
        infra: &Infra,
        app_id: &str,
        topics: &[&str],
    ) -> anyhow::Result<Self> {
        let resources = match infra.broker.kind() {
            harness::Broker::RabbitMq => {
                let overrides = [(
                    (
                        contracts::topics::PUBSUB.to_owned(),
                        "concurrencyMode".to_owned(),
                    ),
                    "single".to_owned(),
                )]
                .into_iter()
                .collect();
                Some(infra.resources_with(app_id, &overrides)?)
            }
            harness::Broker::Redis | harness::Broker::Kafka => None,
        };
        Self::start_with(infra, app_id, topics, resources).await
    }

    async fn start_with(
        infra: &Infra,
        app_id: &str,
        topics: &[&str],
        resources: Option<std::path::PathBuf>,
    ) -> anyhow::Result<Self> {
        let seen = Observed::default();
        let mut table = SubscriptionTable::new();
        for topic in topics {
            table = table.add(Subscription::new(
                contracts::topics::PUBSUB,
                *topic,
                format!("/observed/{topic}"),
            ));
        }
        let events = Router::new()
            .route("/observed/{topic}", post(record))
            .route_layer(
                ServiceBuilder::new()
                    .layer(CloudEventLayer::new())
                    .layer(DaprStatusLayer::new()),
            )
            .with_state(seen.clone());
        let app = Router::new().merge(events).merge(table.router());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let daprd = infra
            .daprd(app_id, Some(port), |o| {
                if let Some(resources) = resources {
                    o.resources = resources;
                }
            })
            .await?;
        daprd.wait_app_channel(Duration::from_secs(30)).await?;
        let client = dapr::DaprClient::new(dapr::ClientConfig {
            http_endpoint: daprd.http_endpoint(),
            ..dapr::ClientConfig::default()
        })?;
        let expected = topics.len();
        wait::until(
            "the observer's subscriptions",
            Duration::from_secs(30),
            || async {
                let meta = client.metadata().await?;
                let n = meta["subscriptions"].as_array().map_or(0, Vec::len);
                Ok::<_, dapr::Error>((n >= expected).then_some(()))
            },
        )
        .await?;
        Ok(Self { seen, daprd })
    }
}
