//! The todo-dapr backend: tasks over REST and MCP, stored in PostgreSQL, with every change
//! published through a transactional outbox to Dapr pub/sub.
//!
//! Layers, inside out: [`domain`] (API types), [`recurrence`] and [`validation`] (pure rules),
//! `store` (SQL), [`outbox`] (events written in the same transaction) and [`service`] (the use
//! cases every edge calls); then the edges: `rest`, `mcp` and `internal` over it, put together
//! by `app`. Beside them, [`import`] carries an installation of the original system over.

pub mod app;
pub mod auth;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod handoff;
pub mod import;
pub mod internal;
pub mod mcp;
pub mod openapi;
pub mod outbox;
pub mod recurrence;
pub mod relay;
pub mod rest;
pub mod service;
pub(crate) mod store;
pub mod validation;

/// Strategies the unit properties share with the integration suites' property tests.
#[cfg(test)]
#[path = "../tests/support/json.rs"]
mod json_fixtures;

pub use domain::AuthUser;
pub use error::ServiceError;
pub use service::TaskService;
