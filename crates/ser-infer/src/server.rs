//! The HTTP service: `POST /v1/predict` (a WAV body), `POST /v1/timeline` (long audio),
//! `GET /v1/model`, `GET /healthz`. Every limit is configurable; a bad request gets a 4xx with a
//! JSON `{"error": ...}` that says what is wrong; SIGTERM or Ctrl-C shut it down gracefully
//! (requests in flight finish).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use ser_features::audio::decode_wav;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::Semaphore;

use crate::Classifier;
use crate::output::segment_json;
use crate::timeline::{WindowSettings, timeline};

/// The service's limits.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServeConfig {
    /// Largest request body in bytes.
    pub max_body_bytes: usize,
    /// Longest audio `/v1/predict` accepts, in seconds.
    pub max_predict_s: f32,
    /// Longest audio `/v1/timeline` accepts, in seconds.
    pub max_timeline_s: f32,
    /// Requests classified at once; more wait, up to `timeout`.
    pub max_concurrent: usize,
    /// A request that waits and runs longer than this gets 503 / 504.
    pub timeout: Duration,
    /// `/v1/timeline`'s window and silence defaults (a query's values win).
    pub windows: WindowSettings,
}

impl ServeConfig {
    pub fn defaults() -> ServeConfig {
        ServeConfig {
            max_body_bytes: 50 << 20,
            max_predict_s: 60.0,
            max_timeline_s: 3600.0,
            max_concurrent: std::thread::available_parallelism().map_or(2, |n| n.get()),
            timeout: Duration::from_secs(30),
            windows: WindowSettings::default(),
        }
    }
}

struct AppState {
    classifier: Arc<Classifier>,
    config: ServeConfig,
    permits: Arc<Semaphore>,
}

struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, axum::Json(json!({"error": self.1}))).into_response()
    }
}

const WAV_TYPES: [&str; 5] = ["audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave", "application/octet-stream"];

fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else { return Ok(()) };
    let value = value.to_str().unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if WAV_TYPES.contains(&value.as_str()) {
        Ok(())
    } else {
        Err(ApiError(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("content type `{value}` is not WAV; send the WAV file's bytes as audio/wav"),
        ))
    }
}

/// Runs `work` on the blocking pool under the concurrency limit and the timeout.
async fn classify<T: Send + 'static>(
    state: &Arc<AppState>,
    work: impl FnOnce(&Classifier) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let deadline = tokio::time::Instant::now() + state.config.timeout;
    let permit = tokio::time::timeout_at(deadline, state.permits.clone().acquire_owned())
        .await
        .map_err(|_| ApiError(StatusCode::SERVICE_UNAVAILABLE, "the server is busy; retry later".into()))?
        .map_err(|_| ApiError(StatusCode::SERVICE_UNAVAILABLE, "the server is shutting down".into()))?;
    let classifier = state.classifier.clone();
    // The permit goes with the work: a request that timed out still holds its slot until its
    // classification really ends, so the limit holds.
    let task = tokio::task::spawn_blocking(move || {
        let result = work(&classifier);
        drop(permit);
        result
    });
    let result = tokio::time::timeout_at(deadline, task).await;
    match result {
        Err(_) => Err(ApiError(
            StatusCode::GATEWAY_TIMEOUT,
            format!("classification took longer than {:?}", state.config.timeout),
        )),
        Ok(Err(e)) => Err(ApiError(StatusCode::INTERNAL_SERVER_ERROR, format!("classification failed: {e}"))),
        Ok(Ok(r)) => r,
    }
}

fn decode(body: &[u8], max_s: f32) -> Result<ser_features::audio::Audio, ApiError> {
    if body.is_empty() {
        return Err(ApiError(StatusCode::BAD_REQUEST, "empty body: send a WAV file".into()));
    }
    decode_wav(body, max_s).map_err(|e| {
        let status = if matches!(e, ser_features::audio::AudioError::TooLong { .. }) {
            StatusCode::PAYLOAD_TOO_LARGE
        } else {
            StatusCode::BAD_REQUEST
        };
        ApiError(status, format!("audio: {e}"))
    })
}

/// The body, or the extractor's rejection (e.g. over the size limit) as a JSON error.
fn body_or_error(body: Result<Bytes, BytesRejection>, limit: usize) -> Result<Bytes, ApiError> {
    body.map_err(|e| {
        let status = e.status();
        let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
            format!("request body is larger than the server's limit of {limit} bytes")
        } else {
            format!("reading the request body: {e}")
        };
        ApiError(status, message)
    })
}

async fn predict(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    check_content_type(&headers)?;
    let body = body_or_error(body, state.config.max_body_bytes)?;
    let max_s = state.config.max_predict_s;
    let value = classify(&state, move |classifier| {
        let audio = decode(&body, max_s)?;
        let p = classifier
            .predict(&audio.samples, audio.sample_rate)
            .map_err(|e| ApiError(StatusCode::UNPROCESSABLE_ENTITY, format!("audio: {e}")))?;
        let mut value = p.to_json(classifier.labels());
        value["duration_s"] = audio.duration_s().into();
        value["sample_rate"] = audio.sample_rate.into();
        Ok(value)
    })
    .await?;
    Ok(axum::Json(value).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TimelineQuery {
    window: Option<f64>,
    hop: Option<f64>,
    silence_dbfs: Option<f64>,
}

impl TimelineQuery {
    fn settings(&self) -> WindowSettings {
        WindowSettings { window_s: self.window, hop_s: self.hop, silence_dbfs: self.silence_dbfs }
    }
}

async fn timeline_handler(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    query: Result<Query<TimelineQuery>, axum::extract::rejection::QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    check_content_type(&headers)?;
    let body = body_or_error(body, state.config.max_body_bytes)?;
    let Query(query) = query
        .map_err(|e| ApiError(StatusCode::BAD_REQUEST, format!("query: {e}; known: window, hop, silence_dbfs")))?;
    let max_s = state.config.max_timeline_s;
    let settings = query.settings().or(state.config.windows);
    let value = classify(&state, move |classifier| {
        let config = settings.resolve(classifier).map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.to_string()))?;
        let audio = decode(&body, max_s)?;
        let segments = timeline(classifier, &audio.samples, audio.sample_rate, &config)
            .map_err(|e| ApiError(StatusCode::UNPROCESSABLE_ENTITY, format!("audio: {e}")))?;
        let segments: Vec<serde_json::Value> = segments.iter().map(|s| segment_json(s, classifier.labels())).collect();
        Ok(json!({"duration_s": audio.duration_s(), "sample_rate": audio.sample_rate, "window": config, "segments": segments}))
    })
    .await?;
    Ok(axum::Json(value).into_response())
}

async fn model(State(state): State<Arc<AppState>>) -> Response {
    let meta = state.classifier.meta();
    axum::Json(json!({
        "labels": meta.labels,
        "features_config": meta.features_config,
        "features_config_hash": meta.features_config_hash,
        "n_frames": meta.n_frames,
        "n_coeffs": meta.n_coeffs,
        "window_s": state.classifier.window_seconds(),
        "model_config": meta.model_config,
        "seed": meta.seed,
        "protocol": meta.protocol,
        "best_epoch": meta.best_epoch,
        "metrics": meta.metrics,
        "data": meta.data,
        "versions": meta.versions,
        "limits": state.config,
    }))
    .into_response()
}

async fn not_found() -> ApiError {
    ApiError(
        StatusCode::NOT_FOUND,
        "no such route; see GET /healthz, GET /v1/model, POST /v1/predict, POST /v1/timeline".into(),
    )
}

/// The router, for embedding in another axum app or serving with [`serve`].
pub fn router(classifier: Arc<Classifier>, config: ServeConfig) -> Router {
    let state = Arc::new(AppState {
        classifier,
        permits: Arc::new(Semaphore::new(config.max_concurrent.max(1))),
        config: config.clone(),
    });
    Router::new()
        .route("/healthz", get(|| async { axum::Json(json!({"status": "ok"})) }))
        .route("/v1/model", get(model))
        .route("/v1/predict", post(predict))
        .route("/v1/timeline", post(timeline_handler))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .with_state(state)
}

/// Serves on a bound listener until `shutdown` resolves; requests in flight finish first.
pub async fn serve(
    listener: tokio::net::TcpListener,
    classifier: Arc<Classifier>,
    config: ServeConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let addr: SocketAddr = listener.local_addr()?;
    tracing::info!("serving on http://{addr}");
    axum::serve(listener, router(classifier, config)).with_graceful_shutdown(shutdown).await
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
