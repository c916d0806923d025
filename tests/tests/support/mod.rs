//! Pieces shared by the end-to-end suites.

pub mod observer;
pub mod tokens;
