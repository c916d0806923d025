//! Typed async client of the Dapr sidecar HTTP API, plus the app-side routes daprd calls back.
//!
//! Outbound: [`DaprClient`] covers publish (single, JSON, bulk), state (ETags, bulk,
//! transactions), secrets, jobs, service invocation, metadata and health. Inbound:
//! [`SubscriptionTable`] answers `GET /dapr/subscribe` (and renders the same subscriptions as
//! declarative YAML), [`JobRouter`] serves `POST /job/{name}`. Paths, status codes and bodies
//! follow daprd's code where it disagrees with Dapr's docs (see `docs/dapr.md`, "daprd behaviour
//! the code relies on").
//!
//! With the `test-support` feature, `dapr::testing::FakeSidecar` fakes daprd's HTTP API for
//! unit tests (enable it from `[dev-dependencies]` only).

pub mod client;
pub mod cloudevent;
pub mod error;
mod health;
mod invoke;
pub mod job_router;
pub mod jobs;
pub mod publish;
mod secrets;
pub mod state;
pub mod subscription;
#[cfg(feature = "test-support")]
pub mod testing;

pub use client::{ClientConfig, ConfigError, ConfigProblem, DaprClient};
pub use cloudevent::{
    APPLICATION_JSON, CLOUDEVENTS_JSON, CloudEvent, CloudEventError, SPEC_VERSION,
    is_json_content_type,
};
pub use error::{DaprApiError, Error};
pub use job_router::{JOB_PATH, JobError, JobRouter, JobTrigger};
pub use jobs::{FailurePolicy, Job};
pub use publish::{BulkPublishEntry, BulkPublishResponse, FailedEntry, PublishOptions};
pub use state::{
    BulkStateItem, Concurrency, Consistency, Insert, SaveItem, StateItem, StateOptions,
    TransactionOperation,
};
pub use subscription::{SUBSCRIBE_PATH, Subscription, SubscriptionTable};
