//! The notification service's HTTP surface: one router, one place that decides the layer order.
//!
//! Routes: `GET /dapr/subscribe` (the subscription table), `POST /events/task-events` (task
//! events), `POST /job/{name}` (reminder triggers and the reminder sweep), `/healthz`,
//! `/readyz`, `/metrics`. Every route but the probes and metrics is called by our own sidecar
//! only.

use std::sync::Arc;

use axum::Router;
use axum::routing::post;
use dapr::{DaprClient, FailurePolicy, JobRouter};
use middleware::{AppTokenLayer, Metrics, Publisher, consumer_router, event_route_layers};

use crate::metrics::ReminderMetrics;
use crate::reminders::{self, DEFAULT_JOB_FAILURE_POLICY, JOB_PREFIX};
use crate::sweep::{self, SWEEP_JOB};
use crate::{TASK_EVENTS_ROUTE, subscriptions, trigger};

/// What every handler can reach; cheap to clone, and nothing in it matters for correctness
/// (three replicas share their state through Dapr only).
#[derive(Clone, Debug)]
pub struct AppState {
    /// Our own sidecar: state, jobs, invocation, health.
    pub dapr: DaprClient,
    /// Publishes `reminder.due` (concurrency → retry → timeout).
    pub publisher: Publisher,
    /// The shared HTTP/consumed/publish metrics and their registry.
    pub metrics: Metrics,
    /// The reminder metrics.
    pub reminders: ReminderMetrics,
    /// App id of the backend.
    pub backend_app_id: Arc<str>,
    /// Dapr state store name.
    pub state_store: Arc<str>,
    /// What the Scheduler does when a reminder trigger fails.
    pub job_failure_policy: FailurePolicy,
}

impl AppState {
    /// Bundles the pieces, registering the reminder metrics in `metrics`' registry.
    pub fn new(
        dapr: DaprClient,
        publisher: Publisher,
        metrics: Metrics,
        backend_app_id: &str,
        state_store: &str,
    ) -> Result<Self, prometheus::Error> {
        let reminders = ReminderMetrics::register(metrics.registry(), crate::SERVICE)?;
        Ok(Self {
            dapr,
            publisher,
            metrics,
            reminders,
            backend_app_id: backend_app_id.into(),
            state_store: state_store.into(),
            job_failure_policy: DEFAULT_JOB_FAILURE_POLICY,
        })
    }

    /// Replaces [`DEFAULT_JOB_FAILURE_POLICY`] for the jobs scheduled from now on.
    #[must_use]
    pub fn with_job_failure_policy(mut self, policy: FailurePolicy) -> Self {
        self.job_failure_policy = policy;
        self
    }
}

/// Builds the complete router.
pub fn router(state: AppState, app_token: AppTokenLayer) -> Router {
    let events = Router::new()
        .route(TASK_EVENTS_ROUTE, post(reminders::on_task_event))
        .route_layer(event_route_layers(&state.metrics))
        .with_state(state.clone());
    let jobs = {
        let state = state.clone();
        JobRouter::new()
            .on_prefix(JOB_PREFIX, {
                let state = state.clone();
                move |job| trigger::on_reminder_job(state.clone(), job)
            })
            .on_prefix(SWEEP_JOB, move |job| {
                sweep::on_sweep_job(state.clone(), job)
            })
            .into_router()
    };
    // Ready when our sidecar is: without it no event is handled.
    consumer_router(
        events.merge(jobs),
        subscriptions().router(),
        state.dapr,
        state.metrics,
        app_token,
    )
}
