//! Pieces shared by the end-to-end suites.

pub(crate) mod observer;
pub(crate) mod tokens;
