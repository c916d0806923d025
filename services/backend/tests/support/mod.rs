//! Pieces shared by the backend's integration suites (each uses a subset).
#![allow(dead_code)]

pub(crate) mod mcp;
