//! `ser-infer`: emotions for new audio with a trained checkpoint.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use ser_infer::config::{Format, InferConfig};
use ser_infer::output::{prediction_header, prediction_row, segment_header, segment_row};
use ser_infer::stream::{RawEncoding, StreamFormat, stream};
use ser_infer::timeline::Adapt;
use ser_infer::timeline::Span;
use ser_infer::{Classifier, TimelineConfig, WindowSettings, shipped, timeline};

const EXAMPLES: &str = "\
Examples:
  ser-infer predict clip.wav more/ 'calls/*.wav'          (the shipped model)
  ser-infer predict --checkpoint artifacts/ravdess/model --format jsonl recordings/ > emotions.jsonl
  ser-infer timeline meeting.wav --format csv
  arecord -f S16_LE -r 48000 -c 1 -t raw | ser-infer stream --raw s16le --sample-rate 48000
  ser-infer serve --addr 127.0.0.1:8080                    (the live page at http://127.0.0.1:8080/)

Exit status: 0 success, 1 failure (for predict: any input failed; the others are still printed),
2 usage error.";

/// Emotions for new audio: files, long recordings and live streams.
#[derive(Debug, Parser)]
#[command(version, about, after_long_help = EXAMPLES)]
struct Cli {
    #[command(flatten)]
    log: ser_cli::LogArgs,
    /// Defaults for every command's options (a pipeline's infer.yaml); flags given on the
    /// command line win.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// One emotion per file: WAV files, directories (searched for *.wav) or glob patterns.
    Predict(PredictArgs),
    /// An emotion timeline of long recordings: sliding windows, silent ones marked.
    Timeline(TimelineArgs),
    /// Read audio (WAV, FLAC, MP3, Ogg) or raw PCM from stdin; one JSON line per window as soon
    /// as it is complete.
    Stream(StreamArgs),
    /// An HTTP service: POST /v1/predict, POST /v1/timeline, GET /v1/model, GET /healthz.
    Serve(ServeArgs),
}

/// A flag's help with its default, taken from the library's (infer.yaml's) defaults, so the help
/// cannot drift from them.
fn with_default(text: &str, default: impl std::fmt::Display) -> String {
    format!("{text} [default: {default}]")
}

fn serve_default() -> ser_infer::config::ServeFileConfig {
    InferConfig::default().serve
}

#[derive(Debug, Args)]
struct ServeArgs {
    #[command(flatten)]
    model: ModelArgs,
    #[arg(long, help = with_default("Address to listen on (port 0 picks a free port; the address is printed on stdout)", serve_default().addr))]
    addr: Option<String>,
    #[arg(long, help = with_default("Largest request body in bytes", serve_default().max_body_bytes))]
    max_body_bytes: Option<usize>,
    #[arg(long, help = with_default("Longest audio POST /v1/predict accepts, in seconds", serve_default().max_predict_seconds))]
    max_predict_seconds: Option<f32>,
    #[arg(long, help = with_default("Longest audio POST /v1/timeline accepts, in seconds", serve_default().max_timeline_seconds))]
    max_timeline_seconds: Option<f32>,
    /// Requests classified at once (default: the number of cores); more wait up to --timeout.
    #[arg(long)]
    max_concurrent: Option<usize>,
    #[arg(long, help = with_default("Seconds a request may wait and run before it gets 503 or 504", serve_default().timeout_s))]
    timeout: Option<f64>,
    #[arg(long, help = with_default("Seconds a request body may take to arrive before it gets 408", serve_default().body_timeout_s))]
    body_timeout: Option<f64>,
    #[arg(long, help = with_default("Live streams (/v1/stream) open at once", serve_default().max_streams))]
    max_streams: Option<usize>,
    /// An origin besides the page's own that may open a live stream (repeat for more; `*`: any)
    #[arg(long = "allowed-origin")]
    allowed_origins: Vec<String>,
    /// A file of API key hashes, one SHA-256 a line (`printf %s "$KEY" | sha256sum`): every /v1/*
    /// request then needs `Authorization: Bearer <key>`. SER_API_KEYS (keys, comma-separated) adds
    /// more
    #[arg(long)]
    api_keys_file: Option<PathBuf>,
    /// Requests a second each client may make to /v1/* (its API key, or its address without keys);
    /// over it, 429 with Retry-After [default: no limit]
    #[arg(long)]
    rate_per_s: Option<u32>,
    #[arg(long, help = with_default("Requests a client may make at once above its rate", serve_default().rate_burst))]
    rate_burst: Option<u32>,
}

#[derive(Debug, Args)]
struct ModelArgs {
    #[arg(long, help = with_default(
        "The checkpoint directory (ser-model train's --out, or an ensemble's)",
        format!("the shipped model, {}, built into this binary", shipped::DIR),
    ))]
    checkpoint: Option<PathBuf>,
    #[command(flatten)]
    device: ser_cli::DeviceArgs,
}

impl ModelArgs {
    fn load(&self) -> anyhow::Result<Classifier> {
        let device = ser_model::select_device(self.device.wants_cuda())?;
        let classifier = Classifier::load_or_shipped(self.checkpoint.as_deref(), &device).with_context(|| {
            format!("loading checkpoint {}", self.checkpoint.as_deref().unwrap_or(shipped::DIR.as_ref()).display())
        })?;
        Ok(classifier)
    }
}

#[derive(Debug, Args)]
struct PredictArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// WAV files, directories (recursively, *.wav) or glob patterns.
    #[arg(required = true)]
    inputs: Vec<String>,
    #[arg(long, value_enum, help = with_default("Output format", format!("{:?}", InferConfig::default().format).to_lowercase()))]
    format: Option<Format>,
    #[arg(long, help = with_default("Refuse files longer than this many seconds", InferConfig::default().max_duration_s))]
    max_duration: Option<f32>,
    #[command(flatten)]
    window: WindowArgs,
    /// Answer for the network's input from the start of each file only (one window), as the
    /// reference did, instead of every window's mean.
    #[arg(long)]
    first_window: bool,
    /// Test-time speaker normalisation: standardise each file's windows around the speech of
    /// the file (`recording`) or of all the files given (`together`: one speaker's files)
    /// instead of the training statistics. Helps on corpora unlike the model's, costs on speakers
    /// like its own (docs/results/cross-corpus.md).
    #[arg(long, default_value = "off")]
    adapt: Adapt,
}

#[derive(Debug, Args)]
struct WindowArgs {
    /// Window length in seconds (default: the checkpoint's frame count, ~4 s for the reference).
    #[arg(long)]
    window: Option<f64>,
    /// Step between windows in seconds (default: half the window).
    #[arg(long)]
    hop: Option<f64>,
    #[arg(long, allow_hyphen_values = true, help = with_default("Windows whose loudest 100 ms is quieter than this RMS level (dB full scale) are marked silent, not classified", InferConfig::default().silence_dbfs))]
    silence_dbfs: Option<f64>,
}

impl WindowArgs {
    /// The flags' settings over the file's.
    fn settings(&self, file: &InferConfig, adapt: Adapt) -> WindowSettings {
        WindowSettings { window_s: self.window, hop_s: self.hop, silence_dbfs: self.silence_dbfs, adapt: Some(adapt) }
            .or(file.windows())
    }

    fn config(&self, classifier: &Classifier, file: &InferConfig, adapt: Adapt) -> anyhow::Result<TimelineConfig> {
        self.settings(file, adapt).resolve(classifier).context("--window/--hop")
    }
}

#[derive(Debug, Args)]
struct TimelineArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Recordings (WAV).
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    #[command(flatten)]
    window: WindowArgs,
    #[arg(long, value_enum, help = with_default("Output format", format!("{:?}", InferConfig::default().format).to_lowercase()))]
    format: Option<Format>,
    #[arg(long, help = with_default("Refuse recordings longer than this many seconds", InferConfig::default().timeline_max_duration_s))]
    max_duration: Option<f32>,
    /// Test-time speaker normalisation: standardise each recording's windows around its own
    /// speech (`recording`; one speaker a recording) instead of the training statistics.
    #[arg(long, default_value = "off")]
    adapt: Adapt,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq)]
enum RawArg {
    /// Signed 16-bit little-endian.
    S16le,
    /// 32-bit float little-endian.
    F32le,
}

#[derive(Debug, Args)]
struct StreamArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// stdin carries raw PCM of this encoding instead of a WAV file.
    #[arg(long, value_enum, requires = "sample_rate")]
    raw: Option<RawArg>,
    /// Sample rate of raw PCM in Hz.
    #[arg(long)]
    sample_rate: Option<u32>,
    /// Channels of raw PCM (interleaved).
    #[arg(long, default_value_t = 1)]
    channels: u16,
    #[command(flatten)]
    window: WindowArgs,
}

fn main() -> ExitCode {
    // SAFETY: first thing in main; no other thread exists yet.
    unsafe { ser_model::use_inline_elementwise_ops() };
    let cli = Cli::parse();
    cli.log.init("warn,ser_infer=info");
    ser_cli::exit(run(cli).map(|all_ok| if all_ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }))
}

/// `Ok(false)`: finished, but some input failed.
fn run(cli: Cli) -> anyhow::Result<bool> {
    let file = match cli.config.as_deref() {
        Some(path) => InferConfig::read(path).context("reading --config")?,
        None => InferConfig::default(),
    };
    match cli.command {
        Command::Predict(args) => run_predict(args, &file),
        Command::Timeline(args) => run_timeline(args, &file),
        Command::Stream(args) => run_stream(args, &file).map(|()| true),
        Command::Serve(args) => run_serve(args, &file).map(|()| true),
    }
}

fn run_predict(args: PredictArgs, file: &InferConfig) -> anyhow::Result<bool> {
    let format = args.format.unwrap_or(file.format);
    let max_duration = args.max_duration.unwrap_or(file.max_duration_s);
    let classifier = args.model.load()?;
    let config = args.window.config(&classifier, file, args.adapt)?;
    let span = if args.first_window { Span::FirstWindow } else { Span::Whole };
    let files = ser_features::io::expand_inputs(&args.inputs)?;
    let labels = classifier.labels().to_vec();
    let mut out = std::io::stdout().lock();
    prediction_header(&mut out, format, &labels)?;
    let mut failed = 0;
    ser_infer::files::predict_files(&classifier, &files, max_duration, &config, span, |path, result| {
        let shown = path.display().to_string();
        let result = result.map_err(|e| {
            failed += 1;
            eprintln!("error: {e}");
            e.to_string()
        });
        prediction_row(&mut out, format, &shown, &labels, result.as_ref().map_err(String::as_str))?;
        out.flush()
    })?;
    if failed > 0 {
        eprintln!("{failed} of {} inputs failed; the others are above", files.len());
    }
    Ok(failed == 0)
}

fn run_timeline(args: TimelineArgs, file: &InferConfig) -> anyhow::Result<bool> {
    let format = args.format.unwrap_or(file.format);
    let max_duration = args.max_duration.unwrap_or(file.timeline_max_duration_s);
    let classifier = args.model.load()?;
    let config = args.window.config(&classifier, file, args.adapt)?;
    let labels = classifier.labels().to_vec();
    let mut out = std::io::stdout().lock();
    segment_header(&mut out, format, &labels)?;
    let mut failed = 0;
    for path in &args.inputs {
        let result = ser_features::io::read_audio(path, max_duration).map_err(anyhow::Error::from).and_then(|audio| {
            timeline(&classifier, &audio.samples, audio.sample_rate, &config)
                .with_context(|| path.display().to_string())
        });
        match result {
            Ok(segments) => {
                for s in &segments {
                    segment_row(&mut out, format, &path.display().to_string(), &labels, s)?;
                }
            }
            Err(e) => {
                failed += 1;
                eprintln!("error: {e:#}");
            }
        }
    }
    out.flush()?;
    Ok(failed == 0)
}

fn run_stream(args: StreamArgs, file: &InferConfig) -> anyhow::Result<()> {
    let classifier = args.model.load()?;
    let config = args.window.config(&classifier, file, Adapt::Off)?;
    let format = match args.raw {
        None => StreamFormat::Encoded,
        Some(raw) => StreamFormat::Raw {
            encoding: match raw {
                RawArg::S16le => RawEncoding::S16Le,
                RawArg::F32le => RawEncoding::F32Le,
            },
            sample_rate: args.sample_rate.context("--raw needs --sample-rate")?,
            channels: args.channels,
        },
    };
    let labels = classifier.labels().to_vec();
    let stdout = std::io::stdout();
    let summary = stream(&classifier, std::io::stdin(), format, &config, |segment| {
        let mut out = stdout.lock();
        segment_row(&mut out, Format::Jsonl, "-", &labels, &segment)?;
        out.flush()
    })
    .context("reading the stream from stdin")?;
    tracing::info!(
        "stream ended: {:.1} s of audio at {} Hz, {} windows",
        summary.samples as f64 / summary.sample_rate.max(1) as f64,
        summary.sample_rate,
        summary.windows
    );
    Ok(())
}

/// The keys of `--api-keys-file` (or `serve.api_keys_file`) and of `SER_API_KEYS`; `None` when
/// neither is given. Says how many, never which.
fn api_keys(file: Option<&std::path::Path>) -> anyhow::Result<Option<ser_infer::auth::ApiKeys>> {
    use ser_infer::auth::{ApiKeys, KEYS_ENV};
    let from_file = file.map(ApiKeys::read_hashes).transpose().context("--api-keys-file (serve.api_keys_file)")?;
    let from_env = std::env::var(KEYS_ENV).ok().map(|v| ApiKeys::from_keys(&v)).transpose()?;
    let keys = match (from_file, from_env) {
        (None, None) => return Ok(None),
        (Some(a), Some(b)) => a.with(b),
        (Some(k), None) | (None, Some(k)) => k,
    };
    tracing::info!("API keys: {} (every /v1/* request needs one)", keys.len());
    Ok(Some(keys))
}

fn run_serve(args: ServeArgs, file: &InferConfig) -> anyhow::Result<()> {
    use ser_infer::server::{ServeConfig, serve, shutdown_signal};
    let classifier = std::sync::Arc::new(args.model.load()?);
    let seconds = |flag: &str, value: f64| -> anyhow::Result<std::time::Duration> {
        if !(value > 0.0 && value.is_finite()) {
            bail!("--{flag} (serve.{}_s): {value} must be a positive number of seconds", flag.replace('-', "_"));
        }
        Ok(std::time::Duration::from_secs_f64(value))
    };
    let timeout = seconds("timeout", args.timeout.unwrap_or(file.serve.timeout_s))?;
    let body_timeout = seconds("body-timeout", args.body_timeout.unwrap_or(file.serve.body_timeout_s))?;
    let addr = args.addr.clone().unwrap_or_else(|| file.serve.addr.clone());
    let config = ServeConfig {
        max_body_bytes: args.max_body_bytes.unwrap_or(file.serve.max_body_bytes),
        max_predict_s: args.max_predict_seconds.unwrap_or(file.serve.max_predict_seconds),
        max_timeline_s: args.max_timeline_seconds.unwrap_or(file.serve.max_timeline_seconds),
        max_concurrent: args
            .max_concurrent
            .or(file.serve.max_concurrent)
            .unwrap_or(ServeConfig::defaults().max_concurrent),
        timeout,
        body_timeout,
        windows: file.windows(),
        max_streams: args.max_streams.unwrap_or(file.serve.max_streams),
        max_stream_message_bytes: file.serve.max_stream_message_bytes,
        max_stream_s: file.serve.max_stream_seconds,
        stream_idle_timeout: seconds("stream_idle_timeout_s", file.serve.stream_idle_timeout_s)?,
        allowed_origins: if args.allowed_origins.is_empty() {
            file.serve.allowed_origins.clone()
        } else {
            args.allowed_origins.clone()
        },
        api_keys: api_keys(args.api_keys_file.as_deref().or(file.serve.api_keys_file.as_deref()))?,
        open_page: file.serve.open_page,
        open_metrics: file.serve.open_metrics,
        rate: match args.rate_per_s.or(file.serve.rate_per_s) {
            None => None,
            Some(0) => {
                bail!("--rate-per-s (serve.rate_per_s): 0; give a positive number of requests, or none for no limit")
            }
            Some(per_s) => Some(ser_infer::config::RateLimit {
                per_s,
                burst: args.rate_burst.unwrap_or(file.serve.rate_burst).max(1),
            }),
        },
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&addr).await.with_context(|| format!("binding {addr}"))?;
        println!("http://{}", listener.local_addr()?);
        std::io::stdout().flush()?;
        serve(listener, classifier, config, shutdown_signal()).await.context("serving")
    })
}
