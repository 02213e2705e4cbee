//! `ser-infer`: emotions for new audio with a trained checkpoint.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use ser_features::audio::{decode_wav, read_audio_file};
use ser_infer::stream::{RawEncoding, StreamFormat, stream};
use ser_infer::{Classifier, DEFAULT_MAX_DURATION_S, Prediction, Segment, TimelineConfig, timeline};

const EXAMPLES: &str = "\
Examples:
  ser-infer predict --checkpoint artifacts/ravdess/model clip.wav more/ 'calls/*.wav'
  ser-infer predict --checkpoint artifacts/ravdess/model --format jsonl recordings/ > emotions.jsonl
  ser-infer timeline --checkpoint artifacts/ravdess/model meeting.wav --format csv
  arecord -f S16_LE -r 16000 -c 1 -t raw | ser-infer stream --checkpoint artifacts/ravdess/model \\
      --raw s16le --sample-rate 16000

Exit status: 0 success, 1 failure (for predict: any input failed; the others are still printed),
2 usage error.";

/// Emotions for new audio: files, long recordings and live streams.
#[derive(Debug, Parser)]
#[command(version, about, after_long_help = EXAMPLES)]
struct Cli {
    #[command(flatten)]
    log: LogArgs,
    /// Defaults for every command's options (a pipeline's infer.yaml); flags given on the
    /// command line win.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args)]
struct LogArgs {
    /// More log output (-v info for libraries, -vv debug, -vvv trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Only errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// One emotion per file: WAV files, directories (searched for *.wav) or glob patterns.
    Predict(PredictArgs),
    /// An emotion timeline of long recordings: sliding windows, silent ones marked.
    Timeline(TimelineArgs),
    /// Read WAV or raw PCM from stdin; one JSON line per window as soon as it is complete.
    Stream(StreamArgs),
    /// An HTTP service: POST /v1/predict, POST /v1/timeline, GET /v1/model, GET /healthz.
    Serve(ServeArgs),
}

#[derive(Debug, Args)]
struct ServeArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Address to listen on (port 0 picks a free port; the address is printed on stdout)
    /// [default: 127.0.0.1:8080]
    #[arg(long)]
    addr: Option<String>,
    /// Largest request body in bytes [default: 52428800]
    #[arg(long)]
    max_body_bytes: Option<usize>,
    /// Longest audio POST /v1/predict accepts, in seconds [default: 60]
    #[arg(long)]
    max_predict_seconds: Option<f32>,
    /// Longest audio POST /v1/timeline accepts, in seconds [default: 3600]
    #[arg(long)]
    max_timeline_seconds: Option<f32>,
    /// Requests classified at once (default: the number of cores); more wait up to --timeout.
    #[arg(long)]
    max_concurrent: Option<usize>,
    /// Seconds a request may wait and run before it gets 503 or 504 [default: 30]
    #[arg(long)]
    timeout: Option<f64>,
}

/// `--config infer.yaml`: defaults for the commands' options. Every key is optional; unknown
/// keys are errors.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
struct InferConfig {
    /// Output of predict and timeline: table, csv or jsonl.
    format: Format,
    /// predict: refuse files longer than this many seconds.
    max_duration_s: f32,
    /// timeline: refuse recordings longer than this many seconds.
    timeline_max_duration_s: f32,
    /// timeline and stream: window and hop in seconds (null: the model's input length, half of it).
    window_s: Option<f64>,
    hop_s: Option<f64>,
    /// timeline and stream: windows quieter than this RMS level are marked silent.
    silence_dbfs: f64,
    serve: ServeFileConfig,
}

#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
struct ServeFileConfig {
    addr: String,
    max_body_bytes: usize,
    max_predict_seconds: f32,
    max_timeline_seconds: f32,
    /// null: the number of cores.
    max_concurrent: Option<usize>,
    timeout_s: f64,
}

impl Default for InferConfig {
    fn default() -> Self {
        InferConfig {
            format: Format::Table,
            max_duration_s: 600.0,
            timeline_max_duration_s: DEFAULT_MAX_DURATION_S,
            window_s: None,
            hop_s: None,
            silence_dbfs: ser_infer::timeline::DEFAULT_SILENCE_DBFS,
            serve: ServeFileConfig::default(),
        }
    }
}

impl Default for ServeFileConfig {
    /// The library's defaults (`ServeConfig::defaults`); `max_concurrent` stays null (= cores).
    fn default() -> Self {
        let d = ser_infer::server::ServeConfig::defaults();
        ServeFileConfig {
            addr: "127.0.0.1:8080".into(),
            max_body_bytes: d.max_body_bytes,
            max_predict_seconds: d.max_predict_s,
            max_timeline_seconds: d.max_timeline_s,
            max_concurrent: None,
            timeout_s: d.timeout.as_secs_f64(),
        }
    }
}

impl InferConfig {
    fn read(path: Option<&Path>) -> anyhow::Result<InferConfig> {
        let Some(path) = path else { return Ok(InferConfig::default()) };
        let text = std::fs::read_to_string(path).with_context(|| format!("reading --config {}", path.display()))?;
        if text.trim().is_empty() {
            return Ok(InferConfig::default());
        }
        serde_yaml::from_str(&text).with_context(|| format!("{}: not a valid infer.yaml", path.display()))
    }
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq)]
enum DeviceArg {
    Cpu,
    Cuda,
}

#[derive(Debug, Args)]
struct ModelArgs {
    /// The checkpoint directory (ser-model train's --out).
    #[arg(long)]
    checkpoint: PathBuf,
    /// Where to run: cpu, or cuda (needs a build with `--features cuda`).
    #[arg(long, value_enum, default_value = "cpu")]
    device: DeviceArg,
}

impl ModelArgs {
    fn load(&self) -> anyhow::Result<Classifier> {
        let device = ser_model::select_device(self.device == DeviceArg::Cuda)?;
        Classifier::load(&self.checkpoint, &device)
            .with_context(|| format!("loading checkpoint {}", self.checkpoint.display()))
    }
}

/// Also the `format` key of infer.yaml.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
enum Format {
    /// Aligned columns for people.
    Table,
    Csv,
    /// One JSON object per line.
    Jsonl,
}

#[derive(Debug, Args)]
struct PredictArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// WAV files, directories (recursively, *.wav) or glob patterns.
    #[arg(required = true)]
    inputs: Vec<String>,
    /// Output format [default: table]
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// Refuse files longer than this many seconds [default: 600]
    #[arg(long)]
    max_duration: Option<f32>,
}

#[derive(Debug, Args)]
struct WindowArgs {
    /// Window length in seconds (default: the checkpoint's frame count, ~4 s for the reference).
    #[arg(long)]
    window: Option<f64>,
    /// Step between windows in seconds (default: half the window).
    #[arg(long)]
    hop: Option<f64>,
    /// Windows quieter than this RMS level (dB full scale) are marked silent, not classified
    /// [default: -50]
    #[arg(long, allow_hyphen_values = true)]
    silence_dbfs: Option<f64>,
}

impl WindowArgs {
    fn config(&self, classifier: &Classifier, file: &InferConfig) -> anyhow::Result<TimelineConfig> {
        let default = TimelineConfig::for_classifier(classifier);
        let window_s = self.window.or(file.window_s).unwrap_or(default.window_s);
        let hop_s = self.hop.or(file.hop_s).unwrap_or(window_s / 2.0);
        let config = TimelineConfig { window_s, hop_s, silence_dbfs: self.silence_dbfs.unwrap_or(file.silence_dbfs) };
        config.validate().map_err(|m| anyhow::anyhow!("--window/--hop: {m}"))?;
        Ok(config)
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
    /// Output format [default: table]
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// Refuse recordings longer than this many seconds [default: 14400]
    #[arg(long)]
    max_duration: Option<f32>,
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
    init_logging(&cli.log);
    match run(cli) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(log: &LogArgs) {
    let default = if log.quiet {
        "error"
    } else {
        match log.verbose {
            0 => "warn,ser_infer=info",
            1 => "info",
            2 => "debug",
            _ => "trace",
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).init();
}

/// `Ok(false)`: finished, but some input failed.
fn run(cli: Cli) -> anyhow::Result<bool> {
    let file = InferConfig::read(cli.config.as_deref())?;
    match cli.command {
        Command::Predict(args) => run_predict(args, &file),
        Command::Timeline(args) => run_timeline(args, &file),
        Command::Stream(args) => run_stream(args, &file).map(|()| true),
        Command::Serve(args) => run_serve(args, &file).map(|()| true),
    }
}

/// Expands files, directories and glob patterns into a sorted list of files.
fn expand_inputs(inputs: &[String]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for input in inputs {
        let path = Path::new(input);
        if path.is_dir() {
            let mut found = Vec::new();
            walk(path, &mut found).with_context(|| format!("listing {}", path.display()))?;
            if found.is_empty() {
                tracing::warn!("{}: no .wav files", path.display());
            }
            found.sort();
            out.extend(found);
        } else if path.exists() {
            out.push(path.to_path_buf());
        } else if input.contains(['*', '?', '[']) {
            let matches: Vec<PathBuf> = glob::glob(input)
                .with_context(|| format!("bad glob pattern `{input}`"))?
                .filter_map(|m| m.ok())
                .filter(|p| p.is_file())
                .collect();
            if matches.is_empty() {
                bail!("`{input}` matches no file");
            }
            out.extend(matches);
        } else {
            // Reported per file below, so the other inputs still run.
            out.push(path.to_path_buf());
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("wav")) {
            out.push(path);
        }
    }
    Ok(())
}

fn read_audio(path: &Path, max_duration: f32) -> anyhow::Result<(Vec<f32>, u32)> {
    let bytes = read_audio_file(path, max_duration).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let audio = decode_wav(&bytes, max_duration).with_context(|| path.display().to_string())?;
    Ok((audio.samples, audio.sample_rate))
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n']) { format!("\"{}\"", text.replace('"', "\"\"")) } else { text.to_string() }
}

/// Files decoded and classified at once by `predict`.
const PREDICT_CHUNK: usize = 64;

fn run_predict(args: PredictArgs, file: &InferConfig) -> anyhow::Result<bool> {
    let format = args.format.unwrap_or(file.format);
    let max_duration = args.max_duration.unwrap_or(file.max_duration_s);
    let classifier = args.model.load()?;
    let files = expand_inputs(&args.inputs)?;
    let labels = classifier.labels().to_vec();
    let mut out = std::io::stdout().lock();
    match format {
        Format::Csv => writeln!(
            out,
            "path,label,confidence,{}",
            labels.iter().map(|l| format!("p_{l}")).collect::<Vec<_>>().join(",")
        )?,
        Format::Table => writeln!(out, "{:<50} {:<10} {:>10}", "path", "label", "confidence")?,
        Format::Jsonl => {}
    }
    let mut failed = 0;
    // A chunk at a time, so memory stays bounded however many files come; within a chunk, files
    // are read and decoded in parallel and classified in one batch. A bad file keeps its error.
    for (chunk_idx, chunk) in files.chunks(PREDICT_CHUNK).enumerate() {
        if files.len() > PREDICT_CHUNK {
            tracing::info!(
                "files {}..{} of {}",
                chunk_idx * PREDICT_CHUNK + 1,
                chunk_idx * PREDICT_CHUNK + chunk.len(),
                files.len()
            );
        }
        let audio: Vec<anyhow::Result<(Vec<f32>, u32)>> = {
            use rayon::prelude::*;
            chunk.par_iter().map(|p| read_audio(p, max_duration)).collect()
        };
        let clips: Vec<(&[f32], u32)> =
            audio.iter().filter_map(|a| a.as_ref().ok()).map(|(s, r)| (s.as_slice(), *r)).collect();
        let mut predictions = classifier.predict_many(&clips).into_iter();
        for (path, audio) in chunk.iter().zip(&audio) {
            let result: anyhow::Result<Prediction> = match audio {
                Err(e) => Err(anyhow::anyhow!("{e:#}")),
                Ok(_) => predictions
                    .next()
                    .expect("one prediction per decoded clip")
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display())),
            };
            let shown = path.display().to_string();
            match result {
                Ok(p) => match format {
                    Format::Table => writeln!(out, "{shown:<50} {:<10} {:>10.3}", p.label, p.confidence)?,
                    Format::Csv => writeln!(
                        out,
                        "{},{},{:.6},{}",
                        csv_field(&shown),
                        p.label,
                        p.confidence,
                        p.probabilities.iter().map(|v| format!("{v:.6}")).collect::<Vec<_>>().join(",")
                    )?,
                    Format::Jsonl => {
                        let mut line = p.to_json(&labels);
                        line["path"] = shown.into();
                        writeln!(out, "{line}")?;
                    }
                },
                Err(e) => {
                    failed += 1;
                    eprintln!("error: {e:#}");
                    if format == Format::Jsonl {
                        writeln!(out, "{}", serde_json::json!({"path": shown, "error": format!("{e:#}")}))?;
                    }
                }
            }
        }
        out.flush()?;
    }
    if failed > 0 {
        eprintln!("{failed} of {} inputs failed; the others are above", files.len());
    }
    Ok(failed == 0)
}

fn write_segment(
    out: &mut impl Write,
    format: Format,
    path: &str,
    labels: &[String],
    s: &Segment,
) -> std::io::Result<()> {
    match format {
        Format::Table => match &s.prediction {
            Some(p) => {
                writeln!(out, "{path:<30} {:>8.2} {:>8.2} {:<10} {:>10.3}", s.start_s, s.end_s, p.label, p.confidence)
            }
            None => writeln!(out, "{path:<30} {:>8.2} {:>8.2} {:<10} {:>10}", s.start_s, s.end_s, "(silent)", "-"),
        },
        Format::Csv => {
            let (label, confidence, probs) = match &s.prediction {
                Some(p) => (
                    p.label.clone(),
                    format!("{:.6}", p.confidence),
                    p.probabilities.iter().map(|v| format!("{v:.6}")).collect::<Vec<_>>().join(","),
                ),
                None => ("silent".into(), String::new(), vec![""; labels.len()].join(",")),
            };
            writeln!(
                out,
                "{},{:.3},{:.3},{:.1},{label},{confidence},{probs}",
                csv_field(path),
                s.start_s,
                s.end_s,
                s.level_dbfs
            )
        }
        Format::Jsonl => {
            let mut line =
                serde_json::json!({"path": path, "start_s": s.start_s, "end_s": s.end_s, "level_dbfs": s.level_dbfs});
            match &s.prediction {
                Some(p) => {
                    for (key, value) in p.to_json(labels).as_object().expect("an object") {
                        line[key] = value.clone();
                    }
                }
                None => line["silent"] = true.into(),
            }
            writeln!(out, "{line}")
        }
    }
}

fn segment_header(out: &mut impl Write, format: Format, labels: &[String]) -> std::io::Result<()> {
    match format {
        Format::Table => {
            writeln!(out, "{:<30} {:>8} {:>8} {:<10} {:>10}", "path", "start_s", "end_s", "label", "confidence")
        }
        Format::Csv => writeln!(
            out,
            "path,start_s,end_s,level_dbfs,label,confidence,{}",
            labels.iter().map(|l| format!("p_{l}")).collect::<Vec<_>>().join(",")
        ),
        Format::Jsonl => Ok(()),
    }
}

fn run_timeline(args: TimelineArgs, file: &InferConfig) -> anyhow::Result<bool> {
    let format = args.format.unwrap_or(file.format);
    let max_duration = args.max_duration.unwrap_or(file.timeline_max_duration_s);
    let classifier = args.model.load()?;
    let config = args.window.config(&classifier, file)?;
    let labels = classifier.labels().to_vec();
    let mut out = std::io::stdout().lock();
    segment_header(&mut out, format, &labels)?;
    let mut failed = 0;
    for path in &args.inputs {
        let result = read_audio(path, max_duration).and_then(|(samples, rate)| {
            timeline(&classifier, &samples, rate, &config).with_context(|| path.display().to_string())
        });
        match result {
            Ok(segments) => {
                for s in &segments {
                    write_segment(&mut out, format, &path.display().to_string(), &labels, s)?;
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
    let config = args.window.config(&classifier, file)?;
    let format = match args.raw {
        None => StreamFormat::Wav,
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
    let summary = stream(&classifier, std::io::stdin().lock(), format, &config, |segment| {
        let mut out = stdout.lock();
        write_segment(&mut out, Format::Jsonl, "-", &labels, &segment)?;
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

fn run_serve(args: ServeArgs, file: &InferConfig) -> anyhow::Result<()> {
    use ser_infer::server::{ServeConfig, serve, shutdown_signal};
    let classifier = std::sync::Arc::new(args.model.load()?);
    let timeout = args.timeout.unwrap_or(file.serve.timeout_s);
    if !(timeout > 0.0 && timeout.is_finite()) {
        bail!("--timeout (serve.timeout_s): {timeout} must be a positive number of seconds");
    }
    let addr = args.addr.clone().unwrap_or_else(|| file.serve.addr.clone());
    let config = ServeConfig {
        max_body_bytes: args.max_body_bytes.unwrap_or(file.serve.max_body_bytes),
        max_predict_s: args.max_predict_seconds.unwrap_or(file.serve.max_predict_seconds),
        max_timeline_s: args.max_timeline_seconds.unwrap_or(file.serve.max_timeline_seconds),
        max_concurrent: args
            .max_concurrent
            .or(file.serve.max_concurrent)
            .unwrap_or(ServeConfig::defaults().max_concurrent),
        timeout: std::time::Duration::from_secs_f64(timeout),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&addr).await.with_context(|| format!("binding {addr}"))?;
        println!("http://{}", listener.local_addr()?);
        std::io::stdout().flush()?;
        serve(listener, classifier, config, shutdown_signal()).await.context("serving")
    })
}
