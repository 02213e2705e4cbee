//! What the service's handlers share: its state (the classifier, the limits, the permits) and
//! its error response (a status and a JSON `{"error": ...}`).

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

use crate::Classifier;
use crate::config::ServeConfig;

pub(crate) struct AppState {
    pub(crate) classifier: Arc<Classifier>,
    pub(crate) config: ServeConfig,
    pub(crate) permits: Arc<Semaphore>,
    /// One per open live stream.
    pub(crate) streams: Arc<Semaphore>,
    pub(crate) metrics: crate::metrics::Metrics,
    /// `/openapi.json`'s body.
    pub(crate) openapi: String,
    /// The routes it lists (`GET /, POST /v1/predict, ...`), for the 404 message.
    pub(crate) routes: String,
}

pub(crate) struct ApiError(pub(crate) StatusCode, pub(crate) String);

/// Every error's body: what is wrong, and what to do.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorBody {
    pub(crate) error: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, axum::Json(ErrorBody { error: self.1 })).into_response()
    }
}
