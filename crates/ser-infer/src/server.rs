//! The HTTP service: `POST /v1/predict` (an audio file's bytes: WAV, FLAC, MP3, Ogg, AIFF,
//! M4A), `POST /v1/timeline` (long audio), `GET /v1/model`, `GET /healthz`, and the live page
//! (`GET /`, [`crate::page`]) with its WebSocket (`GET /v1/stream`, [`crate::socket`]). Every
//! limit is configurable; a bad request gets a 4xx with a JSON `{"error": ...}` that says what is
//! wrong; SIGTERM or Ctrl-C shut it down gracefully (requests in flight finish).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use ser_features::audio::decode_audio;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::Semaphore;

use crate::Classifier;
pub use crate::config::ServeConfig;
use crate::output::recording_json;
use crate::output::segment_json;
pub(crate) use crate::state::{ApiError, AppState};
use crate::timeline::{Span, WindowSettings, predict_recordings, timeline};

/// The content types the service takes: audio ser-features decodes, and raw bytes.
const AUDIO_TYPES: [&str; 22] = [
    "audio/wav",
    "audio/x-wav",
    "audio/wave",
    "audio/vnd.wave",
    "audio/flac",
    "audio/x-flac",
    "audio/mpeg",
    "audio/mp3",
    "audio/ogg",
    "audio/vorbis",
    "application/ogg",
    "audio/aiff",
    "audio/x-aiff",
    "audio/mp4",
    "audio/m4a",
    "audio/x-m4a",
    "audio/aac",
    "audio/x-caf",
    "audio/opus",
    "video/mp4",
    "audio/webm",
    "application/octet-stream",
];

fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else { return Ok(()) };
    let value = value.to_str().unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if AUDIO_TYPES.contains(&value.as_str()) {
        Ok(())
    } else {
        Err(ApiError(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "content type `{value}` is not audio; send the file's bytes as audio/wav, audio/flac, audio/mpeg, \
                 audio/ogg, audio/aiff, audio/mp4 or application/octet-stream"
            ),
        ))
    }
}

/// The request body, refused before any of it is read when its declared length is over the
/// limit (so `Expect: 100-continue` is never answered `100 Continue`), and read within the body
/// timeout: 413 over the limit, 408 when it stalls.
async fn read_body(state: &AppState, headers: &HeaderMap, body: Body) -> Result<Bytes, ApiError> {
    let limit = state.config.max_body_bytes;
    let too_large = || {
        ApiError(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body is larger than the server's limit of {limit} bytes"),
        )
    };
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    match tokio::time::timeout(state.config.body_timeout, axum::body::to_bytes(body, limit)).await {
        Err(_) => Err(ApiError(
            StatusCode::REQUEST_TIMEOUT,
            format!("the request body did not arrive within {:?}", state.config.body_timeout),
        )),
        Ok(Err(e)) if std::error::Error::source(&e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>()) => {
            Err(too_large())
        }
        Ok(Err(e)) => Err(ApiError(StatusCode::BAD_REQUEST, format!("reading the request body: {e}"))),
        Ok(Ok(bytes)) => Ok(bytes),
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
        return Err(ApiError(StatusCode::BAD_REQUEST, "empty body: send an audio file's bytes".into()));
    }
    decode_audio(body, max_s).map_err(|e| {
        let status = if matches!(e, ser_features::audio::AudioError::TooLong { .. }) {
            StatusCode::PAYLOAD_TOO_LARGE
        } else {
            StatusCode::BAD_REQUEST
        };
        ApiError(status, format!("audio: {e}"))
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PredictQuery {
    window: Option<f64>,
    hop: Option<f64>,
    silence_dbfs: Option<f64>,
    /// Only the network's input from the start, as the reference did.
    #[serde(default)]
    first_window: bool,
}

async fn predict(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    query: Result<Query<PredictQuery>, axum::extract::rejection::QueryRejection>,
    body: Body,
) -> Result<Response, ApiError> {
    check_content_type(&headers)?;
    let Query(query) = query.map_err(|e| {
        ApiError(StatusCode::BAD_REQUEST, format!("query: {e}; known: window, hop, silence_dbfs, first_window"))
    })?;
    let body = read_body(&state, &headers, body).await?;
    let max_s = state.config.max_predict_s;
    let settings = WindowSettings { window_s: query.window, hop_s: query.hop, silence_dbfs: query.silence_dbfs }
        .or(state.config.windows);
    let span = if query.first_window { Span::FirstWindow } else { Span::Whole };
    let value = classify(&state, move |classifier| {
        let config = settings.resolve(classifier).map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.to_string()))?;
        let audio = decode(&body, max_s)?;
        let recording = predict_recordings(classifier, &[(&audio.samples, audio.sample_rate)], &config, span)
            .remove(0)
            .map_err(|e| ApiError(StatusCode::UNPROCESSABLE_ENTITY, format!("audio: {e}")))?;
        let mut value = recording_json(&recording, classifier.labels());
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
    body: Body,
) -> Result<Response, ApiError> {
    check_content_type(&headers)?;
    let Query(query) = query
        .map_err(|e| ApiError(StatusCode::BAD_REQUEST, format!("query: {e}; known: window, hop, silence_dbfs")))?;
    let body = read_body(&state, &headers, body).await?;
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
    let checkpoint = state.classifier.checkpoint();
    // One entry per network whose probabilities are averaged: one for a trained checkpoint.
    let members: Vec<serde_json::Value> = checkpoint
        .members
        .iter()
        .map(|m| {
            let meta = &m.meta;
            json!({
                "model_config": meta.model_config,
                "seed": meta.seed,
                "protocol": meta.protocol,
                "best_epoch": meta.best_epoch,
                "metrics": meta.metrics,
                "data": meta.data,
                "versions": meta.versions,
            })
        })
        .collect();
    axum::Json(json!({
        "checkpoint": checkpoint.dir,
        "weights_sha256": checkpoint.weights_sha256,
        "labels": checkpoint.labels(),
        "features_config": checkpoint.features_config(),
        "features_config_hash": checkpoint.features_config_hash(),
        "n_frames": checkpoint.n_frames(),
        "n_coeffs": checkpoint.n_coeffs(),
        "window_s": state.classifier.window_seconds(),
        "protocol": checkpoint.protocol(),
        "members": members,
        "limits": state.config,
    }))
    .into_response()
}

async fn not_found() -> ApiError {
    ApiError(
        StatusCode::NOT_FOUND,
        "no such route; see GET / (the page), GET /healthz, GET /v1/model, POST /v1/predict, POST /v1/timeline, \
         GET /v1/stream (WebSocket)"
            .into(),
    )
}

/// The router, for embedding in another axum app or serving with [`serve`].
pub fn router(classifier: Arc<Classifier>, config: ServeConfig) -> Router {
    let state = Arc::new(AppState {
        classifier,
        permits: Arc::new(Semaphore::new(config.max_concurrent.max(1))),
        streams: Arc::new(Semaphore::new(config.max_streams)),
        config: config.clone(),
    });
    Router::new()
        .route("/", get(crate::page::index))
        .route("/healthz", get(|| async { axum::Json(json!({"status": "ok"})) }))
        .route("/v1/model", get(model))
        .route("/v1/predict", post(predict))
        .route("/v1/timeline", post(timeline_handler))
        .route("/v1/stream", get(crate::socket::stream_handler))
        .fallback(not_found)
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
