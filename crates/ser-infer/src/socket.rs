//! `GET /v1/stream`: live audio over a WebSocket. The client sends raw PCM in binary messages
//! (`?sample_rate=` Hz, `encoding=f32le|s16le`, `channels=`) and a text `end` when it stops; the
//! server runs [`crate::stream::stream`] on what arrives, the windows of `ser-infer stream`, and
//! answers one JSON message per window in the shape of `/v1/timeline`'s segments (silent ones
//! included), then `{"done": true, ...}`. Limits close the socket with a code and a reason:
//! 1009 a message over `max_stream_message_bytes`, 1008 a stream over `max_stream_seconds` or
//! idle (no message) for `stream_idle_timeout`, 1013 more than `max_streams` at once, 1003 a
//! message that is not PCM or `end`. A wrong `Origin` is refused (403) before the upgrade.

use std::io::Read;
use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::output::segment_json;
use crate::state::{ApiError, AppState};
use crate::stream::{RawEncoding, StreamFormat, stream};
use crate::timeline::WindowSettings;

/// Close codes (RFC 6455).
pub mod close {
    pub const NORMAL: u16 = 1000;
    pub const UNSUPPORTED: u16 = 1003;
    pub const POLICY: u16 = 1008;
    pub const TOO_BIG: u16 = 1009;
    pub const SERVER_ERROR: u16 = 1011;
    pub const TRY_AGAIN_LATER: u16 = 1013;
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct StreamQuery {
    /// The PCM's sample rate in Hz.
    sample_rate: u32,
    #[serde(default)]
    encoding: Option<String>,
    #[serde(default)]
    channels: Option<u16>,
    window: Option<f64>,
    hop: Option<f64>,
    silence_dbfs: Option<f64>,
}

impl StreamQuery {
    fn format(&self) -> Result<StreamFormat, ApiError> {
        let encoding = match self.encoding.as_deref().unwrap_or("f32le") {
            "f32le" => RawEncoding::F32Le,
            "s16le" => RawEncoding::S16Le,
            other => {
                return Err(ApiError(StatusCode::BAD_REQUEST, format!("encoding `{other}`: use f32le or s16le")));
            }
        };
        let channels = self.channels.unwrap_or(1);
        if channels == 0 {
            return Err(ApiError(StatusCode::BAD_REQUEST, "channels must be at least 1".into()));
        }
        ser_features::audio::check_sample_rate(self.sample_rate)
            .map_err(|e| ApiError(StatusCode::BAD_REQUEST, format!("sample_rate: {e}")))?;
        Ok(StreamFormat::Raw { encoding, sample_rate: self.sample_rate, channels })
    }
}

/// The page's own origin is always allowed (a request without `Origin` is not from a browser);
/// others only when listed in `allowed_origins`.
fn check_origin(headers: &HeaderMap, allowed: &[String]) -> Result<(), ApiError> {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else { return Ok(()) };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    let same = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://")) == Some(host);
    if same || allowed.iter().any(|a| a == origin || a == "*") {
        Ok(())
    } else {
        Err(ApiError(
            StatusCode::FORBIDDEN,
            format!("origin `{origin}` may not open a stream; add it to serve.allowed_origins"),
        ))
    }
}

/// A live stream: raw PCM in binary messages and a text `end`; one JSON window out per window
/// (as `/v1/timeline`'s segments), then `{"done": true, ...}`. With API keys, a browser presents
/// its key as the subprotocol `bearer.<key>` beside `ser.v1`.
#[utoipa::path(get, path = "/v1/stream", tag = "api", params(StreamQuery),
    security((), ("bearer" = [])),
    responses(
        (status = 101, description = "Switching to the WebSocket protocol"),
        (status = 400, description = "A bad query", body = crate::state::ErrorBody),
        (status = 401, description = "No key or a wrong key", body = crate::state::ErrorBody),
        (status = 403, description = "An origin not allowed", body = crate::state::ErrorBody),
        (status = 429, description = "Over the client's rate", body = crate::state::ErrorBody),
    ))]
pub(crate) async fn stream_handler(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    query: Result<Query<StreamQuery>, axum::extract::rejection::QueryRejection>,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    check_origin(&headers, &state.config.allowed_origins)?;
    let Query(query) = query.map_err(|e| {
        ApiError(
            StatusCode::BAD_REQUEST,
            format!("query: {e}; known: sample_rate (required), encoding, channels, window, hop, silence_dbfs"),
        )
    })?;
    let format = query.format()?;
    let settings =
        WindowSettings { window_s: query.window, hop_s: query.hop, silence_dbfs: query.silence_dbfs, adapt: None }
            .or(state.config.windows);
    let config = settings.resolve(&state.classifier).map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.to_string()))?;
    let max_message = state.config.max_stream_message_bytes;
    // A client that offers subprotocols (the page, to carry its key) gets ser's answered.
    Ok(ws
        .protocols([crate::auth::STREAM_PROTOCOL])
        .max_message_size(max_message)
        .max_frame_size(max_message)
        .on_upgrade(move |socket| live(socket, state, format, config))
        .into_response())
}

/// Bytes handed from the socket to the blocking stream reader; a closed channel ends the stream.
/// The channel is bounded: a client faster than classification waits for room (the socket's
/// task awaits, no runtime thread blocks).
struct ChannelReader {
    /// In a mutex only to be `Sync`, as the stream reader must be; reads take it by `&mut`.
    rx: std::sync::Mutex<tokio::sync::mpsc::Receiver<Vec<u8>>>,
    pending: Vec<u8>,
    at: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.pending.len() {
            let rx = self.rx.get_mut().unwrap_or_else(|poisoned| poisoned.into_inner());
            match rx.blocking_recv() {
                Some(bytes) => {
                    self.pending = bytes;
                    self.at = 0;
                }
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.pending.len() - self.at);
        buf[..n].copy_from_slice(&self.pending[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

async fn close_with(socket: &mut WebSocket, code: u16, reason: String) {
    tracing::info!("closing a stream: {code} {reason}");
    let _ = socket.send(Message::Close(Some(CloseFrame { code, reason: reason.into() }))).await;
}

async fn live(
    mut socket: WebSocket,
    state: Arc<AppState>,
    format: StreamFormat,
    config: crate::timeline::TimelineConfig,
) {
    let limits = state.config.clone();
    // The stream's slot; given back before the close frame goes out, so a client that has seen
    // the close can open the next stream at once.
    let Ok(permit) = state.streams.clone().try_acquire_owned() else {
        let reason = format!("too many streams: max_streams is {}; retry later", limits.max_streams);
        return close_with(&mut socket, close::TRY_AGAIN_LATER, reason).await;
    };
    state.metrics.streams_open.inc();
    let StreamFormat::Raw { encoding, sample_rate, channels } = format else { unreachable!("raw PCM only") };
    let frame_bytes = encoding.bytes() * channels as usize;
    let max_bytes = (limits.max_stream_s as f64 * sample_rate as f64) as u64 * frame_bytes as u64;
    let (bytes_tx, bytes_rx) = tokio::sync::mpsc::channel::<Vec<u8>>(64);
    let (segments_tx, mut segments_rx) = tokio::sync::mpsc::unbounded_channel::<serde_json::Value>();
    let classifier = state.classifier.clone();
    let worker = tokio::task::spawn_blocking(move || {
        let reader = ChannelReader { rx: std::sync::Mutex::new(bytes_rx), pending: Vec::new(), at: 0 };
        let labels = classifier.labels().to_vec();
        stream(&classifier, reader, format, &config, |segment| {
            let _ = segments_tx.send(segment_json(&segment, &labels));
            Ok(())
        })
    });
    let mut bytes_tx = Some(bytes_tx);
    let mut received: u64 = 0;
    let idle = limits.stream_idle_timeout;
    let mut deadline = tokio::time::Instant::now() + idle;
    // Receive until the client ends (text `end` or a close), then drain the windows.
    let failure: Option<(u16, String)> = loop {
        tokio::select! {
            segment = segments_rx.recv() => {
                match segment {
                    Some(value) => {
                        if socket.send(Message::Text(value.to_string().into())).await.is_err() {
                            break None;
                        }
                    }
                    None => break None, // the worker ended (its error comes below)
                }
            }
            message = tokio::time::timeout_at(deadline, socket.recv()), if bytes_tx.is_some() => {
                deadline = tokio::time::Instant::now() + idle;
                match message {
                    Err(_) => break Some((close::POLICY, format!("no audio for {idle:?}: stream_idle_timeout"))),
                    Ok(None) | Ok(Some(Ok(Message::Close(_)))) => { bytes_tx = None; }
                    Ok(Some(Err(e))) => {
                        let text = e.to_string();
                        // tungstenite says "Space limit exceeded: Message too long" (or "Frame too long").
                        break Some(if text.contains("Space limit") || text.contains("too long") {
                            (close::TOO_BIG, format!("a message is larger than max_stream_message_bytes ({})", limits.max_stream_message_bytes))
                        } else {
                            (close::POLICY, format!("reading the stream: {text}"))
                        });
                    }
                    Ok(Some(Ok(Message::Binary(bytes)))) => {
                        received += bytes.len() as u64;
                        if received > max_bytes {
                            break Some((close::POLICY, format!("the stream is longer than max_stream_seconds ({} s)", limits.max_stream_s)));
                        }
                        let gone = match &bytes_tx {
                            Some(tx) => tx.send(bytes.to_vec()).await.is_err(),
                            None => false,
                        };
                        if gone {
                            bytes_tx = None;
                        }
                    }
                    Ok(Some(Ok(Message::Text(text)))) if text.trim() == "end" => { bytes_tx = None; }
                    Ok(Some(Ok(Message::Text(_)))) => {
                        break Some((close::UNSUPPORTED, "send PCM in binary messages and the text `end` to finish".into()));
                    }
                    Ok(Some(Ok(_))) => {} // ping / pong
                }
            }
        }
    };
    drop(bytes_tx);
    let (code, reason) = match failure {
        // The worker ends when its input does; its windows so far are sent, nothing more.
        Some(failure) => failure,
        None => match worker.await {
            Ok(Ok(summary)) => {
                while let Ok(value) = segments_rx.try_recv() {
                    let _ = socket.send(Message::Text(value.to_string().into())).await;
                }
                let done = json!({
                    "done": true,
                    "windows": summary.windows,
                    "samples": summary.samples,
                    "sample_rate": summary.sample_rate,
                });
                let _ = socket.send(Message::Text(done.to_string().into())).await;
                (close::NORMAL, "end of stream".into())
            }
            Ok(Err(e)) => (close::UNSUPPORTED, format!("audio: {e}")),
            Err(e) => (close::SERVER_ERROR, format!("stream failed: {e}")),
        },
    };
    state.metrics.audio_seconds.inc_by(received as f64 / frame_bytes as f64 / sample_rate as f64);
    state.metrics.streams_open.dec();
    drop(permit);
    close_with(&mut socket, code, reason).await;
}
