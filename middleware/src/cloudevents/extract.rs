//! [`Event<T>`]: the axum extractor for a decoded CloudEvent and its typed `data`.

use axum::{
    extract::FromRequestParts,
    response::{IntoResponse, Response},
};
use dapr::{CloudEvent, CloudEventError};
use http::{StatusCode, request::Parts};
use serde::de::DeserializeOwned;

use crate::{error::DisplayChain, status::DaprStatus};

/// A CloudEvent decoded by [`CloudEventLayer`](super::CloudEventLayer), with `data` as `T`.
///
/// `data` must be a JSON object (every payload of ours is one; see
/// [`CloudEvent::data_object_as`]). If it is not, or does not deserialize into `T`, the
/// rejection answers `DROP`: redelivering the same bytes cannot make them fit.
#[derive(Debug, Clone)]
pub struct Event<T> {
    /// The whole event (attributes, extensions and raw data).
    pub event: CloudEvent,
    /// The event's `data`, deserialized.
    pub data: T,
}

/// Why [`Event<T>`] could not be extracted.
#[derive(Debug, thiserror::Error)]
pub enum EventRejection {
    /// No decoded event in the request: [`CloudEventLayer`](super::CloudEventLayer) is not
    /// applied to this route. A deployment bug, so answered `500` (which
    /// [`DaprStatusLayer`](crate::DaprStatusLayer) turns into `RETRY`): the event is kept
    /// until a fixed build handles it.
    #[error("no decoded cloudevent in the request; is CloudEventLayer applied to this route?")]
    MissingLayer,
    /// The event's `data` does not have the shape the handler expects; answered `DROP`.
    #[error("data of event {id} (type {ty}) does not match the expected shape")]
    InvalidData {
        /// The event id.
        id: String,
        /// The event type.
        ty: String,
        /// The topic, if Dapr set it.
        topic: Option<String>,
        /// The deserialization error.
        #[source]
        source: CloudEventError,
    },
}

impl IntoResponse for EventRejection {
    fn into_response(self) -> Response {
        match &self {
            Self::MissingLayer => {
                tracing::error!(error = %self, "cannot extract event");
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }
            Self::InvalidData { id, topic, .. } => {
                tracing::warn!(
                    event_id = %id,
                    topic = topic.as_deref().unwrap_or("-"),
                    error = %DisplayChain(&self),
                    dapr_status = %DaprStatus::Drop,
                    "event data rejected"
                );
                DaprStatus::Drop.into_response()
            }
        }
    }
}

impl<S, T> FromRequestParts<S> for Event<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = EventRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        // Cloned, not removed, so other extractors (e.g. `Extension<CloudEvent>`) still work.
        let event = parts
            .extensions
            .get::<CloudEvent>()
            .cloned()
            .ok_or(EventRejection::MissingLayer)?;
        match event.data_object_as::<T>() {
            Ok(data) => Ok(Self { event, data }),
            Err(source) => Err(EventRejection::InvalidData {
                id: event.id,
                ty: event.ty,
                topic: event.topic,
                source,
            }),
        }
    }
}
