//! `infer.yaml` (`ser-infer --config`): defaults for every command's options. Every key is
//! optional; unknown keys are errors. Flags given on the command line win.

use std::path::Path;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::timeline::{DEFAULT_SILENCE_DBFS, WindowSettings};
use crate::{DEFAULT_MAX_DURATION_S, Error, Result};

/// How predict and timeline print their results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Aligned columns for people.
    Table,
    Csv,
    /// One JSON object per line.
    Jsonl,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InferConfig {
    /// Output of predict and timeline: table, csv or jsonl.
    pub format: Format,
    /// predict: refuse files longer than this many seconds.
    pub max_duration_s: f32,
    /// timeline: refuse recordings longer than this many seconds.
    pub timeline_max_duration_s: f32,
    /// timeline, stream and the service: window and hop in seconds (null: the model's input
    /// length, half of it).
    pub window_s: Option<f64>,
    pub hop_s: Option<f64>,
    /// timeline, stream and the service: windows quieter than this RMS level are marked silent.
    pub silence_dbfs: f64,
    pub serve: ServeFileConfig,
}

/// The `serve:` block.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServeFileConfig {
    pub addr: String,
    pub max_body_bytes: usize,
    pub max_predict_seconds: f32,
    pub max_timeline_seconds: f32,
    /// null: the number of cores.
    pub max_concurrent: Option<usize>,
    pub timeout_s: f64,
    /// A request body that has not arrived whole after this many seconds gets 408.
    pub body_timeout_s: f64,
    /// Live streams (`/v1/stream`) open at once.
    pub max_streams: usize,
    /// Largest message of a live stream, in bytes.
    pub max_stream_message_bytes: usize,
    /// Longest live stream, in seconds of audio.
    pub max_stream_seconds: f32,
    /// A live stream without a message for this many seconds is closed.
    pub stream_idle_timeout_s: f64,
    /// Origins besides the page's own that may open a live stream (`*`: any).
    pub allowed_origins: Vec<String>,
    /// A file of API key hashes ([`crate::auth::ApiKeys::read_hashes`]): with it (or
    /// `SER_API_KEYS`), every `/v1/*` request needs a key.
    pub api_keys_file: Option<std::path::PathBuf>,
    /// With API keys: whether the page (`GET /`) is served without one (it asks for a key
    /// itself before it calls the API).
    pub open_page: bool,
    /// With API keys: whether `GET /metrics` is served without one.
    pub open_metrics: bool,
    /// Requests a second each client may make to `/v1/*` (a client: its API key, or its address
    /// without keys); null: no limit. Over it: 429 with `Retry-After`.
    pub rate_per_s: Option<u32>,
    /// Requests a client may make at once above its rate before it is held to it.
    pub rate_burst: u32,
}

/// The address `serve` listens on unless told otherwise: loopback only.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8080";

impl Default for InferConfig {
    fn default() -> Self {
        InferConfig {
            format: Format::Table,
            max_duration_s: 600.0,
            timeline_max_duration_s: DEFAULT_MAX_DURATION_S,
            window_s: None,
            hop_s: None,
            silence_dbfs: DEFAULT_SILENCE_DBFS,
            serve: ServeFileConfig::default(),
        }
    }
}

impl Default for ServeFileConfig {
    /// The library's defaults ([`ServeConfig::defaults`]); `max_concurrent` stays null (= cores).
    fn default() -> Self {
        let d = ServeConfig::defaults();
        ServeFileConfig {
            addr: DEFAULT_ADDR.into(),
            max_body_bytes: d.max_body_bytes,
            max_predict_seconds: d.max_predict_s,
            max_timeline_seconds: d.max_timeline_s,
            max_concurrent: None,
            timeout_s: d.timeout.as_secs_f64(),
            body_timeout_s: d.body_timeout.as_secs_f64(),
            max_streams: d.max_streams,
            max_stream_message_bytes: d.max_stream_message_bytes,
            max_stream_seconds: d.max_stream_s,
            stream_idle_timeout_s: d.stream_idle_timeout.as_secs_f64(),
            allowed_origins: d.allowed_origins,
            api_keys_file: None,
            open_page: d.open_page,
            open_metrics: d.open_metrics,
            rate_per_s: d.rate.map(|r| r.per_s),
            rate_burst: d.rate.map_or(DEFAULT_RATE_BURST, |r| r.burst),
        }
    }
}

impl InferConfig {
    /// Reads `infer.yaml`; an empty file gives the defaults.
    pub fn read(path: &Path) -> Result<InferConfig> {
        let text = fs_err::read_to_string(path)?;
        InferConfig::from_yaml(&text)
            .map_err(|e| Error::Invalid(format!("{}: not a valid infer.yaml: {e}", path.display())))
    }

    pub fn from_yaml(text: &str) -> std::result::Result<InferConfig, String> {
        if text.trim().is_empty() {
            return Ok(InferConfig::default());
        }
        yaml_serde::from_str(text).map_err(|e| e.to_string())
    }

    /// The window settings this file gives.
    pub fn windows(&self) -> WindowSettings {
        WindowSettings {
            window_s: self.window_s,
            hop_s: self.hop_s,
            silence_dbfs: Some(self.silence_dbfs),
            adapt: None,
        }
    }
}

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
    /// A request body that has not arrived whole after this long gets 408.
    pub body_timeout: Duration,
    /// The window and silence defaults of `/v1/predict`, `/v1/timeline` and `/v1/stream` (a
    /// query's values win).
    pub windows: WindowSettings,
    /// Live streams (`/v1/stream`) open at once; one more is closed with 1013.
    pub max_streams: usize,
    /// Largest WebSocket message of a stream, in bytes; a larger one closes it with 1009.
    pub max_stream_message_bytes: usize,
    /// Longest stream, in seconds of audio; past it the stream is closed with 1008.
    pub max_stream_s: f32,
    /// A stream with no message for this long is closed with 1008.
    pub stream_idle_timeout: Duration,
    /// Origins besides the page's own that may open a stream (`*`: any).
    pub allowed_origins: Vec<String>,
    /// The keys `/v1/*` requests must present; `None`: no key needed.
    #[serde(skip)]
    pub api_keys: Option<crate::auth::ApiKeys>,
    /// With keys: the page (`GET /`) is served without one.
    pub open_page: bool,
    /// With keys: `GET /metrics` is served without one (to a scraper on a private network).
    pub open_metrics: bool,
    /// Each client's request rate on `/v1/*`; `None`: no limit.
    pub rate: Option<RateLimit>,
}

/// A client's allowance: `per_s` requests a second, `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RateLimit {
    pub per_s: u32,
    pub burst: u32,
}

/// Requests a client may send at once above its rate, unless told otherwise.
pub const DEFAULT_RATE_BURST: u32 = 20;

impl ServeConfig {
    pub fn defaults() -> ServeConfig {
        ServeConfig {
            max_body_bytes: 50 << 20,
            max_predict_s: 60.0,
            max_timeline_s: 3600.0,
            max_concurrent: std::thread::available_parallelism().map_or(2, |n| n.get()),
            timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(10),
            windows: WindowSettings::default(),
            max_streams: 4,
            max_stream_message_bytes: 1 << 20,
            max_stream_s: 4.0 * 3600.0,
            stream_idle_timeout: Duration::from_secs(10),
            allowed_origins: Vec::new(),
            api_keys: None,
            open_page: true,
            open_metrics: false,
            rate: None,
        }
    }
}
