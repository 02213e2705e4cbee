//! The live page at `GET /`: one self-contained HTML file (CSS and JS inline, nothing fetched
//! from elsewhere, works offline) embedded in the binary. Its Live tab captures the microphone
//! (getUserMedia + an AudioWorklet) and streams it as float32 PCM at the audio context's own rate
//! to `/v1/stream` (the server resamples, so no band the model hears is lost); its File tab posts
//! a file to `/v1/timeline`. Test contract: `#ser-start`, `#ser-file`, `#ser-timeline` (one child
//! per window with `data-start`, `data-end`, `data-label`, `data-confidence`),
//! `document.body.dataset.state` (`idle`, `listening`, `error`), `serCaptured()` (the PCM sent,
//! base64 float32) and `serSendRate()` (its rate).

use axum::http::header;
use axum::response::IntoResponse;

/// The page's bytes.
pub const INDEX_HTML: &str = include_str!("page/index.html");

/// The live page.
#[utoipa::path(get, path = "/", tag = "page", responses((status = 200, description = "The live page", content_type = "text/html")))]
pub async fn index() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
            // Nothing but the page's own origin: the page works offline and fetches nothing else.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; script-src 'self' 'unsafe-inline' blob:; style-src 'unsafe-inline'; \
                 connect-src 'self' ws: wss:; img-src 'self' data: blob:; media-src 'self' blob:",
            ),
        ],
        INDEX_HTML,
    )
}
