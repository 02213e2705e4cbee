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
use ser_features::audio::decode_audio;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::Semaphore;

use crate::Classifier;
pub use crate::config::ServeConfig;
use crate::output::{RecordingAnswer, SegmentAnswer};
pub(crate) use crate::state::{ApiError, AppState, ErrorBody};
use crate::timeline::{Adapt, Span, WindowSettings, predict_recordings, timeline};

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

/// A content type's essence (`audio/wav` of `audio/wav; codecs=1`), lower case.
fn essence(value: &str) -> String {
    value.split(';').next().unwrap_or("").trim().to_ascii_lowercase()
}

/// How a request carries its audio: the body itself, or one file part of a form.
enum Upload {
    Raw,
    /// `multipart/form-data` with this boundary (an HTML form, `curl -F file=@clip.wav`).
    Form(String),
}

fn upload_kind(headers: &HeaderMap) -> Result<Upload, ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else { return Ok(Upload::Raw) };
    let value = value.to_str().unwrap_or("");
    let kind = essence(value);
    if kind == "multipart/form-data" {
        let boundary = multer::parse_boundary(value)
            .map_err(|e| ApiError(StatusCode::BAD_REQUEST, format!("multipart/form-data: {e}")))?;
        return Ok(Upload::Form(boundary));
    }
    check_audio_type(&kind, "content type")?;
    Ok(Upload::Raw)
}

fn check_audio_type(kind: &str, what: &str) -> Result<(), ApiError> {
    if AUDIO_TYPES.contains(&kind) {
        Ok(())
    } else {
        Err(ApiError(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "{what} `{kind}` is not audio; send the file's bytes as audio/wav, audio/flac, audio/mpeg, \
                 audio/ogg, audio/aiff, audio/mp4 or application/octet-stream, or a multipart/form-data form with \
                 one audio file"
            ),
        ))
    }
}

/// The audio of a request: its body (within the size and time limits of [`read_body`]), or the
/// one file part of a `multipart/form-data` body (other fields are ignored).
async fn read_audio(state: &AppState, headers: &HeaderMap, body: Body) -> Result<Bytes, ApiError> {
    let upload = upload_kind(headers)?;
    let bytes = read_body(state, headers, body).await?;
    let boundary = match upload {
        Upload::Raw => return Ok(bytes),
        Upload::Form(boundary) => boundary,
    };
    let bad = |message: String| ApiError(StatusCode::BAD_REQUEST, format!("multipart/form-data: {message}"));
    let stream = futures_util::stream::once(async move { Ok::<Bytes, std::io::Error>(bytes) });
    let mut form = multer::Multipart::new(stream, boundary);
    let mut file = None;
    while let Some(field) = form.next_field().await.map_err(|e| bad(e.to_string()))? {
        if field.file_name().is_none() {
            continue;
        }
        if file.is_some() {
            return Err(bad("more than one file; send one audio file a request".into()));
        }
        if let Some(kind) = field.content_type() {
            check_audio_type(&essence(kind.as_ref()), "the file part's content type")?;
        }
        file = Some(field.bytes().await.map_err(|e| bad(e.to_string()))?);
    }
    file.ok_or_else(|| bad("no file part; send the audio as a file field, e.g. `curl -F file=@clip.wav`".into()))
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
    let start = tokio::time::Instant::now();
    let deadline = start + state.config.timeout;
    let permit = tokio::time::timeout_at(deadline, state.permits.clone().acquire_owned())
        .await
        .map_err(|_| ApiError(StatusCode::SERVICE_UNAVAILABLE, "the server is busy; retry later".into()))?
        .map_err(|_| ApiError(StatusCode::SERVICE_UNAVAILABLE, "the server is shutting down".into()))?;
    state.metrics.queue_wait.observe(start.elapsed().as_secs_f64());
    let classifier = state.classifier.clone();
    let task_state = state.clone();
    // The permit goes with the work: a request that timed out still holds its slot until its
    // classification really ends, so the limit holds.
    let task = tokio::task::spawn_blocking(move || {
        let began = std::time::Instant::now();
        let result = work(&classifier);
        task_state.metrics.compute.observe(began.elapsed().as_secs_f64());
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

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct PredictQuery {
    /// Window length in seconds (default: the model's input).
    window: Option<f64>,
    /// Step between windows in seconds (default: half the window).
    hop: Option<f64>,
    /// Windows quieter than this RMS level (dB full scale) are silent (default -50).
    silence_dbfs: Option<f64>,
    /// Test-time speaker normalisation: `recording` standardises the windows around the
    /// recording's own speech (default `off`).
    adapt: Option<Adapt>,
    /// Only the network's input from the start, as the reference did.
    #[serde(default)]
    first_window: bool,
}

/// `/v1/predict`'s answer: the recording's, with its length and rate.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
struct PredictAnswer {
    #[serde(flatten)]
    answer: RecordingAnswer,
    duration_s: f64,
    sample_rate: u32,
}

/// `/v1/timeline`'s answer.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
struct TimelineAnswer {
    duration_s: f64,
    sample_rate: u32,
    window: crate::timeline::TimelineConfig,
    segments: Vec<SegmentAnswer>,
}

/// A form upload: one audio file part (other fields are ignored).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct FormUpload {
    #[schema(format = Binary, value_type = String)]
    file: Vec<u8>,
}

/// The errors an audio route answers, each an [`ErrorBody`].
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
enum AudioErrors {
    /// Not audio, empty, truncated, a bad query or form.
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// No key or a wrong key.
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// The body did not arrive in time.
    #[response(status = 408)]
    Timeout(ErrorBody),
    /// A body or audio over the limits.
    #[response(status = 413)]
    TooLarge(ErrorBody),
    /// A content type that is not audio.
    #[response(status = 415)]
    NotAudio(ErrorBody),
    /// Audio too short to analyse.
    #[response(status = 422)]
    TooShort(ErrorBody),
    /// Over the client's rate.
    #[response(status = 429)]
    TooMany(ErrorBody),
    /// Busy, or shutting down.
    #[response(status = 503)]
    Busy(ErrorBody),
    /// Classification took too long.
    #[response(status = 504)]
    TookTooLong(ErrorBody),
}

/// An audio route (`POST`, an audio file's bytes or a form in, `$answer` out): its handler with
/// its OpenAPI description, written once for both.
macro_rules! audio_route {
    ($path:literal, $query:ty, $answer:ty, $what:literal, $handler:item) => {
        #[utoipa::path(post, path = $path, tag = "api", params($query), security((), ("bearer" = [])),
            request_body(description = "An audio file's bytes (WAV, FLAC, MP3, Ogg, AIFF, M4A, CAF), or a form with one audio file",
                content(
                    (Vec<u8> = "audio/wav"), (Vec<u8> = "audio/flac"), (Vec<u8> = "audio/mpeg"), (Vec<u8> = "audio/ogg"),
                    (Vec<u8> = "audio/aiff"), (Vec<u8> = "audio/mp4"), (Vec<u8> = "application/octet-stream"),
                    (FormUpload = "multipart/form-data"),
                )),
            responses((status = 200, description = $what, body = $answer), AudioErrors))]
        $handler
    };
}

audio_route!(
    "/v1/predict",
    PredictQuery,
    PredictAnswer,
    "The recording's emotion: every window, the loud ones' probabilities averaged",
    async fn predict(
        State(state): State<Arc<AppState>>,
        headers: HeaderMap,
        query: Result<Query<PredictQuery>, axum::extract::rejection::QueryRejection>,
        body: Body,
    ) -> Result<Response, ApiError> {
        let Query(query) = query.map_err(|e| {
            ApiError(
                StatusCode::BAD_REQUEST,
                format!("query: {e}; known: window, hop, silence_dbfs, adapt, first_window"),
            )
        })?;
        let body = read_audio(&state, &headers, body).await?;
        let max_s = state.config.max_predict_s;
        let settings = WindowSettings {
            window_s: query.window,
            hop_s: query.hop,
            silence_dbfs: query.silence_dbfs,
            adapt: query.adapt,
        }
        .or(state.config.windows);
        let span = if query.first_window { Span::FirstWindow } else { Span::Whole };
        let audio_seconds = state.metrics.audio_seconds.clone();
        let value = classify(&state, move |classifier| {
            let config = settings.resolve(classifier).map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.to_string()))?;
            let audio = decode(&body, max_s)?;
            let recording = predict_recordings(classifier, &[(&audio.samples, audio.sample_rate)], &config, span)
                .remove(0)
                .map_err(|e| ApiError(StatusCode::UNPROCESSABLE_ENTITY, format!("audio: {e}")))?;
            audio_seconds.inc_by(audio.duration_s());
            Ok(PredictAnswer {
                answer: RecordingAnswer::of(&recording, classifier.labels()),
                duration_s: audio.duration_s(),
                sample_rate: audio.sample_rate,
            })
        })
        .await?;
        Ok(axum::Json(value).into_response())
    }
);

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct TimelineQuery {
    /// Window length in seconds (default: the model's input).
    window: Option<f64>,
    /// Step between windows in seconds (default: half the window).
    hop: Option<f64>,
    /// Windows quieter than this RMS level (dB full scale) are silent (default -50).
    silence_dbfs: Option<f64>,
    /// Test-time speaker normalisation: `recording` standardises the windows around the
    /// recording's own speech (default `off`).
    adapt: Option<Adapt>,
}

impl TimelineQuery {
    fn settings(&self) -> WindowSettings {
        WindowSettings { window_s: self.window, hop_s: self.hop, silence_dbfs: self.silence_dbfs, adapt: self.adapt }
    }
}

audio_route!(
    "/v1/timeline",
    TimelineQuery,
    TimelineAnswer,
    "The emotion of every window of the recording",
    async fn timeline_handler(
        State(state): State<Arc<AppState>>,
        headers: HeaderMap,
        query: Result<Query<TimelineQuery>, axum::extract::rejection::QueryRejection>,
        body: Body,
    ) -> Result<Response, ApiError> {
        let Query(query) = query.map_err(|e| {
            ApiError(StatusCode::BAD_REQUEST, format!("query: {e}; known: window, hop, silence_dbfs, adapt"))
        })?;
        let body = read_audio(&state, &headers, body).await?;
        let max_s = state.config.max_timeline_s;
        let settings = query.settings().or(state.config.windows);
        let audio_seconds = state.metrics.audio_seconds.clone();
        let value = classify(&state, move |classifier| {
            let config = settings.resolve(classifier).map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.to_string()))?;
            let audio = decode(&body, max_s)?;
            let segments = timeline(classifier, &audio.samples, audio.sample_rate, &config)
                .map_err(|e| ApiError(StatusCode::UNPROCESSABLE_ENTITY, format!("audio: {e}")))?;
            audio_seconds.inc_by(audio.duration_s());
            Ok(TimelineAnswer {
                duration_s: audio.duration_s(),
                sample_rate: audio.sample_rate,
                window: config,
                segments: segments.iter().map(|s| SegmentAnswer::of(s, classifier.labels())).collect(),
            })
        })
        .await?;
        Ok(axum::Json(value).into_response())
    }
);

/// The model that answers: its labels, feature config, members' provenance, and the limits.
#[utoipa::path(get, path = "/v1/model", tag = "api", security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The model", body = Object),
        (status = 401, description = "No key or a wrong key", body = ErrorBody),
        (status = 429, description = "Over the client's rate", body = ErrorBody),
    ))]
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

/// A path no route serves: the routes the OpenAPI document lists, named.
async fn not_found(State(state): State<Arc<AppState>>) -> ApiError {
    let routes = &state.routes;
    ApiError(StatusCode::NOT_FOUND, format!("no such route; see {routes} (GET /openapi.json describes them)"))
}

/// `GET /, POST /v1/predict, ...`: every route of `doc`, for messages.
fn route_list(doc: &utoipa::openapi::OpenApi) -> String {
    let mut routes = Vec::new();
    for (path, item) in &doc.paths.paths {
        let methods = [("GET", &item.get), ("POST", &item.post), ("PUT", &item.put), ("DELETE", &item.delete)];
        for (method, operation) in methods {
            if operation.is_some() {
                routes.push(format!("{method} {path}"));
            }
        }
    }
    routes.join(", ")
}

/// Counts every request (refused ones too) by route, method and status, and those in flight.
async fn count(
    State(state): State<Arc<AppState>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let route = state.metrics.route_of(request.uri().path());
    let method = request.method().clone();
    state.metrics.in_flight.inc();
    let response = next.run(request).await;
    state.metrics.in_flight.dec();
    state.metrics.count_request(route, method.as_str(), response.status().as_u16());
    response
}

/// The service's counters (OpenMetrics text); with keys, behind one unless `open_metrics`.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "OpenMetrics 1.0 text", content_type = "application/openmetrics-text")))]
async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    ([(header::CONTENT_TYPE, content_type)], state.metrics.render()).into_response()
}

/// With API keys ([`ServeConfig::api_keys`]): a `/v1/*` request (and `/`, unless
/// `open_page`) without a key the service admits gets 401 with `WWW-Authenticate`; `/healthz`
/// stays open.
async fn require_key(
    State(state): State<Arc<AppState>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let Some(keys) = &state.config.api_keys else { return next.run(request).await };
    let path = request.uri().path();
    let guarded = path.starts_with("/v1/")
        || (path == "/" && !state.config.open_page)
        || (path == "/metrics" && !state.config.open_metrics);
    let key = crate::auth::presented(request.headers());
    if !guarded || key.is_some_and(|k| keys.admits(k)) {
        return next.run(request).await;
    }
    let message = match key {
        None => "this server needs an API key: send `Authorization: Bearer <key>`",
        Some(_) => "the API key is not one this server admits",
    };
    let mut response = ApiError(StatusCode::UNAUTHORIZED, message.into()).into_response();
    response.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer realm=\"ser\""));
    response
}

/// Whether the service is up.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "Up", body = Object)))]
async fn healthz() -> axum::Json<serde_json::Value> {
    axum::Json(json!({"status": "ok"}))
}

/// This document: every route, its bodies and errors, generated from the handlers.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document", body = Object)))]
async fn openapi_json(State(state): State<Arc<AppState>>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], state.openapi.clone()).into_response()
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "ser", description = "Speech emotion recognition: emotions for audio files, recordings and live streams."),
    components(schemas(ErrorBody)),
    modifiers(&BearerScheme),
)]
struct ApiDoc;

/// The `bearer` security scheme the `/v1/*` routes name (needed only when the service has keys).
struct BearerScheme;

impl utoipa::Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new().scheme(HttpAuthScheme::Bearer).description(Some("An API key")).build(),
            ),
        );
    }
}

/// The router, for embedding in another axum app or serving with [`serve`].
pub fn router(classifier: Arc<Classifier>, config: ServeConfig) -> Router {
    use utoipa::OpenApi as _;
    use utoipa_axum::{router::OpenApiRouter, routes};
    let (api, api_doc) = OpenApiRouter::<Arc<AppState>>::new()
        .routes(routes!(model))
        .routes(routes!(predict))
        .routes(routes!(timeline_handler))
        .routes(routes!(crate::socket::stream_handler))
        .split_for_parts();
    let api = match config.rate {
        Some(rate) => crate::limit::limit(api, rate, config.api_keys.is_some()),
        None => api,
    };
    let (open, mut doc) = OpenApiRouter::<Arc<AppState>>::with_openapi(ApiDoc::openapi())
        .routes(routes!(crate::page::index))
        .routes(routes!(healthz))
        .routes(routes!(metrics))
        .routes(routes!(openapi_json))
        .split_for_parts();
    doc.merge(api_doc);
    // The document lists the routes served; the metrics count by its paths, the 404 names them.
    let paths: Vec<String> = doc.paths.paths.keys().cloned().collect();
    let state = Arc::new(AppState {
        metrics: crate::metrics::Metrics::new(&classifier, paths),
        openapi: doc.to_pretty_json().expect("the document serialises"),
        routes: route_list(&doc),
        classifier,
        permits: Arc::new(Semaphore::new(config.max_concurrent.max(1))),
        streams: Arc::new(Semaphore::new(config.max_streams)),
        config,
    });
    let app = open
        .merge(api)
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), require_key))
        .layer(axum::middleware::from_fn_with_state(state.clone(), count));
    crate::access::logged(app).with_state(state)
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
    let app = router(classifier, config).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
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
