//! What the service's handlers share: its state (the classifier, the limits, the permits) and
//! its error response (a status and a JSON `{"error": ...}`).

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
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
}

pub(crate) struct ApiError(pub(crate) StatusCode, pub(crate) String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, axum::Json(json!({"error": self.1}))).into_response()
    }
}
