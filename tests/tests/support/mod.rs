//! Pieces shared by the end-to-end suites (each suite uses a different subset).
#![allow(dead_code)]

pub(crate) mod ca;
pub(crate) mod cluster;
pub(crate) mod dashboards;
pub(crate) mod metrics;
pub(crate) mod observer;
pub(crate) mod tokens;
