//! [`TraceContext`]: a W3C `traceparent` (+ `tracestate`) value and the task-local current one.

use std::{fmt, future::Future, str::FromStr};

use tokio::task::futures::TaskLocalFuture;

tokio::task_local! {
    static CURRENT: TraceContext;
}

/// Length of a version-00 `traceparent`: `00-` + 32 hex + `-` + 16 hex + `-` + 2 hex.
const TRACEPARENT_LEN: usize = 55;

/// Why a `traceparent` value was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TraceParentError {
    /// Not `version-traceid-parentid-flags` with the right lengths.
    #[error("traceparent is not in the version-traceid-parentid-flags format")]
    Format,
    /// A field holds characters other than lower-case hex digits.
    #[error("traceparent contains characters other than lower-case hex")]
    Hex,
    /// The version is `ff`, which the specification forbids.
    #[error("traceparent version ff is invalid")]
    Version,
    /// The trace id is all zeros.
    #[error("traceparent trace id is all zeros")]
    ZeroTraceId,
    /// The parent (span) id is all zeros.
    #[error("traceparent parent id is all zeros")]
    ZeroSpanId,
}

/// A W3C trace context: trace id, the id of the span that is the parent of our work, trace
/// flags, and the vendor `tracestate` carried along untouched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    trace_id: u128,
    span_id: u64,
    flags: u8,
    tracestate: Option<String>,
}

impl TraceContext {
    /// Parses a `traceparent` header value.
    ///
    /// Version `00` must be exactly 55 characters; later versions may append fields after a
    /// `-`, which are ignored as the specification asks. Version `ff`, upper-case hex and
    /// all-zero ids are rejected.
    pub fn parse(traceparent: &str) -> Result<Self, TraceParentError> {
        let value = traceparent.trim();
        let head = value
            .get(..TRACEPARENT_LEN)
            .ok_or(TraceParentError::Format)?;
        let rest = &value[TRACEPARENT_LEN..];
        let mut parts = head.split('-');
        let (Some(version), Some(trace_id), Some(span_id), Some(flags), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(TraceParentError::Format);
        };
        if version.len() != 2 || trace_id.len() != 32 || span_id.len() != 16 || flags.len() != 2 {
            return Err(TraceParentError::Format);
        }
        let version = hex(version)?;
        if version == 0xff {
            return Err(TraceParentError::Version);
        }
        if !rest.is_empty() && (version == 0 || !rest.starts_with('-')) {
            return Err(TraceParentError::Format);
        }
        let trace_id = hex(trace_id)?;
        let span_id = hex(span_id)?;
        if trace_id == 0 {
            return Err(TraceParentError::ZeroTraceId);
        }
        if span_id == 0 {
            return Err(TraceParentError::ZeroSpanId);
        }
        Ok(Self {
            trace_id,
            // Both fit: their lengths were checked above.
            span_id: u64::try_from(span_id).map_err(|_| TraceParentError::Format)?,
            flags: u8::try_from(hex(flags)?).map_err(|_| TraceParentError::Format)?,
            tracestate: None,
        })
    }

    /// Starts a new trace: random trace and span ids, sampled flag set.
    pub fn new_root() -> Self {
        Self {
            trace_id: nonzero_u128(),
            span_id: nonzero_u64(),
            flags: 0x01,
            tracestate: None,
        }
    }

    /// A context for work caused by this one: same trace, flags and tracestate, new span id.
    #[must_use]
    pub fn child(&self) -> Self {
        Self {
            span_id: nonzero_u64(),
            tracestate: self.tracestate.clone(),
            ..*self
        }
    }

    /// Attaches a `tracestate` value (kept as received; empty values are ignored).
    #[must_use]
    pub fn with_tracestate(mut self, tracestate: Option<String>) -> Self {
        self.tracestate = tracestate.filter(|s| !s.trim().is_empty());
        self
    }

    /// The trace id as 32 lower-case hex digits.
    pub fn trace_id(&self) -> String {
        format!("{:032x}", self.trace_id)
    }

    /// The span (parent) id as 16 lower-case hex digits.
    pub fn span_id(&self) -> String {
        format!("{:016x}", self.span_id)
    }

    /// Whether the sampled flag is set.
    pub fn sampled(&self) -> bool {
        self.flags & 0x01 == 0x01
    }

    /// The `tracestate` carried along, if any.
    pub fn tracestate(&self) -> Option<&str> {
        self.tracestate.as_deref()
    }

    /// The `traceparent` header value (always version `00`).
    pub fn traceparent(&self) -> String {
        self.to_string()
    }

    /// The context of the task currently running inside [`TraceContext::scope`], if any.
    pub fn current() -> Option<Self> {
        CURRENT.try_with(Clone::clone).ok()
    }

    /// Runs `future` with this context as [`TraceContext::current`].
    pub fn scope<F: Future>(self, future: F) -> TaskLocalFuture<Self, F> {
        CURRENT.scope(self, future)
    }

    /// Runs `f` synchronously with this context as [`TraceContext::current`].
    pub fn sync_scope<R>(self, f: impl FnOnce() -> R) -> R {
        CURRENT.sync_scope(self, f)
    }
}

impl fmt::Display for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{:032x}-{:016x}-{:02x}",
            self.trace_id, self.span_id, self.flags
        )
    }
}

impl FromStr for TraceContext {
    type Err = TraceParentError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

fn hex(field: &str) -> Result<u128, TraceParentError> {
    if !field
        .bytes()
        .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Err(TraceParentError::Hex);
    }
    u128::from_str_radix(field, 16).map_err(|_| TraceParentError::Hex)
}

fn nonzero_u128() -> u128 {
    loop {
        let id = rand::random::<u128>();
        if id != 0 {
            return id;
        }
    }
}

fn nonzero_u64() -> u64 {
    loop {
        let id = rand::random::<u64>();
        if id != 0 {
            return id;
        }
    }
}

#[cfg(test)]
mod props;

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn round_trips_a_valid_traceparent() {
        let ctx = TraceContext::parse(VALID).unwrap();
        assert_eq!(ctx.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(ctx.span_id(), "00f067aa0ba902b7");
        assert!(ctx.sampled());
        assert_eq!(ctx.to_string(), VALID);
        assert_eq!(VALID.parse::<TraceContext>().unwrap(), ctx);
    }

    #[test]
    fn rejects_malformed_values() {
        use TraceParentError::*;
        let cases = [
            ("", Format),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
                Format,
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
                Format,
            ),
            (
                "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
                Format,
            ),
            (
                "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
                Hex,
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
                Hex,
            ),
            (
                "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                Version,
            ),
            (
                "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                ZeroTraceId,
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
                ZeroSpanId,
            ),
            (
                "00-+bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                Hex,
            ),
        ];
        for (value, expected) in cases {
            assert_eq!(TraceContext::parse(value), Err(expected), "{value:?}");
        }
    }

    #[test]
    fn future_versions_may_carry_more_fields() {
        let value = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-whatever";
        let ctx = TraceContext::parse(value).unwrap();
        assert!(!ctx.sampled());
        assert!(TraceContext::parse(&value.replace("-whatever", "whatever")).is_err());
    }

    #[test]
    fn child_keeps_trace_and_changes_span() {
        let parent = TraceContext::parse(VALID)
            .unwrap()
            .with_tracestate(Some("congo=t61rcWkgMzE".into()));
        let child = parent.child();
        assert_eq!(child.trace_id(), parent.trace_id());
        assert_ne!(child.span_id(), parent.span_id());
        assert_eq!(child.tracestate(), Some("congo=t61rcWkgMzE"));
        assert!(TraceContext::parse(&child.traceparent()).is_ok());
    }

    #[test]
    fn roots_are_valid_and_distinct() {
        let a = TraceContext::new_root();
        let b = TraceContext::new_root();
        assert_ne!(a.trace_id(), b.trace_id());
        assert_eq!(
            TraceContext::parse(&a.traceparent()).unwrap().trace_id(),
            a.trace_id()
        );
    }

    #[tokio::test]
    async fn current_is_scoped_to_the_future() {
        assert_eq!(TraceContext::current(), None);
        let ctx = TraceContext::new_root();
        let seen = ctx
            .clone()
            .scope(async {
                tokio::task::yield_now().await;
                TraceContext::current()
            })
            .await;
        assert_eq!(seen, Some(ctx));
        assert_eq!(TraceContext::current(), None);
    }
}
