//! `ser-features`: the feature stage's command line. Parses arguments and config at the edge,
//! then calls the library.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rayon::prelude::*;
use ser_features::extract::{self, ClipInput, Reporter, Shard, Source};
use ser_features::labels::Corpus;
use ser_features::split::{ClipKey, make_splits};
use ser_features::{audio, dsp, io, synth};

const EXAMPLES: &str = "\
Examples:
  # --config: a stage's params as make writes them, artifacts/<pipeline>/pipeline/<stage>.yaml
  # (or: ser-pipeline show <pipeline> --stage <stage>)
  ser-features synth --out data/raw/demo --speakers 8 --seed 7
  ser-features extract --config artifacts/ravdess/pipeline/features.yaml --in data/raw/ravdess --out data/features/ravdess/features.parquet
  ser-features extract --config artifacts/ravdess/pipeline/features.yaml --in data/raw/ravdess --channel noise_10db --out /tmp/noisy.parquet
  ser-features split --config artifacts/ravdess/pipeline/split.yaml --features data/features/ravdess/features.parquet --out data/features/ravdess/splits.parquet
  ser-features features --config artifacts/ravdess/pipeline/features.yaml clip.wav --out clip.npy

Exit status: 0 success, 1 failure, 2 usage error.";

/// Speech audio to a Parquet feature table (librosa-exact MFCC, log-mel, deltas), splits, and a
/// synthetic corpus for tests.
#[derive(Debug, Parser)]
#[command(version, about, after_long_help = EXAMPLES)]
struct Cli {
    #[command(flatten)]
    log: ser_cli::LogArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Extract features of every clip into one Parquet table, plus a rejects table beside it.
    Extract(ExtractArgs),
    /// Assign clips of a feature table to train/val/test (per fold) in a split file.
    Split(SplitArgs),
    /// Write a synthetic RAVDESS-named corpus (48 kHz WAV, 60 clips per speaker).
    Synth(SynthArgs),
    /// Join part tables into one: the shards of one extraction (`extract --shard`), or corpora extracted apart.
    Merge(MergeArgs),
    /// Write the features of one audio file (as a feature table holds them, the input of a
    /// checkpoint or its ONNX export) to .npy or .json.
    Features(FeaturesArgs),
    /// Print a summary of a feature table as JSON.
    Inspect {
        /// The feature table.
        table: PathBuf,
    },
}

#[derive(Debug, Args)]
struct FeaturesArgs {
    /// The feature config: a features.yaml, or its JSON (a checkpoint's `features_config`, an
    /// ONNX export's `ser.features_config`).
    #[arg(long)]
    config: PathBuf,
    /// The audio file (any supported format).
    input: PathBuf,
    /// Where to write: `.npy` (float32, frames x coeffs) or `.json`.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Debug, Args)]
struct ExtractArgs {
    /// The stage's params file (features.yaml).
    #[arg(long)]
    config: PathBuf,
    /// A folder of WAV files, searched recursively.
    #[arg(long = "in", conflicts_with = "manifest", required_unless_present = "manifest")]
    input: Option<PathBuf>,
    /// The file-name convention of `--in`.
    #[arg(long, value_enum, default_value = "ravdess")]
    corpus: CorpusArg,
    /// A CSV with columns path,label,speaker[,split] instead of a folder.
    #[arg(long)]
    manifest: Option<PathBuf>,
    /// The feature table to write (Parquet). Rejects go to <stem>.rejects.csv beside it.
    #[arg(long)]
    out: PathBuf,
    /// Fail at the first bad file instead of listing it in the rejects table.
    #[arg(long)]
    strict: bool,
    /// Extract only shard i of n (stable by clip id), e.g. 0/4; or `env` to read
    /// SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT or JOB_COMPLETION_INDEX/SHARD_COUNT.
    #[arg(long)]
    shard: Option<String>,
    /// Worker threads [default: SLURM_CPUS_PER_TASK inside a Slurm job that sets it, else all cores].
    #[arg(long)]
    jobs: Option<usize>,
    /// Every clip through this channel change before its features, and no augmented copies: a
    /// table for scoring under other recording conditions (telephone, lowpass_5500hz,
    /// noise_10db, gain_-20db, reverb_0.5s). Overrides the config's `channel`.
    #[arg(long)]
    channel: Option<ser_features::channel::Channel>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum CorpusArg {
    Ravdess,
    Tess,
    Emodb,
    Savee,
    CremaD,
    Nemo,
}

#[derive(Debug, Args)]
struct SplitArgs {
    /// The split params file (split.yaml).
    #[arg(long)]
    config: PathBuf,
    /// The feature table whose clips are split.
    #[arg(long)]
    features: PathBuf,
    /// The split file to write (Parquet: clip_id, fold, split).
    #[arg(long)]
    out: PathBuf,
}

#[derive(Debug, Args)]
struct SynthArgs {
    /// Folder to write Actor_XX/*.wav into.
    #[arg(long)]
    out: PathBuf,
    /// Number of synthetic speakers (even numbers are female, as in RAVDESS).
    #[arg(long, default_value_t = 8)]
    speakers: u32,
    /// Seed: the same seed writes the same files.
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

#[derive(Debug, Args)]
struct MergeArgs {
    /// The merged table to write.
    #[arg(long)]
    out: PathBuf,
    /// Part tables written by `extract --shard`.
    #[arg(required = true)]
    parts: Vec<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    cli.log.init("warn,ser_features=info,ser_features_bin=info");
    ser_cli::exit(run(cli))
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let quiet = cli.log.quiet;
    match cli.command {
        Command::Extract(args) => run_extract(args, quiet),
        Command::Split(args) => run_split(args),
        Command::Synth(args) => run_synth(args, quiet),
        Command::Merge(args) => run_merge(args),
        Command::Features(args) => run_features(args),
        Command::Inspect { table } => run_inspect(&table),
    }
}

/// A progress bar on stderr when it is a terminal, and a log line every 10% either way.
struct BarReporter {
    bar: ProgressBar,
    what: &'static str,
    total: Mutex<(usize, usize)>,
    started: Instant,
}

impl BarReporter {
    fn new(what: &'static str, quiet: bool) -> BarReporter {
        let bar = ProgressBar::hidden();
        if !quiet {
            bar.set_draw_target(ProgressDrawTarget::stderr());
        }
        bar.set_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} {msg} [{elapsed_precise}, eta {eta}]")
                .expect("template"),
        );
        bar.set_message(what);
        BarReporter { bar, what, total: Mutex::new((0, 0)), started: Instant::now() }
    }
}

impl Reporter for BarReporter {
    fn on_start(&self, total: usize) {
        self.bar.set_length(total as u64);
        *self.total.lock().expect("lock") = (total, 0);
    }
    fn on_progress(&self, done: usize) {
        self.bar.set_position(done as u64);
        let mut state = self.total.lock().expect("lock");
        let (total, last_decile) = *state;
        let decile = (done * 10).checked_div(total).unwrap_or(10);
        if decile > last_decile {
            state.1 = decile;
            self.bar.suspend(|| {
                tracing::info!("{}: {done}/{total} ({:.1} s)", self.what, self.started.elapsed().as_secs_f64())
            });
        }
    }
    fn on_complete(&self) {
        self.bar.finish_and_clear();
    }
}

fn parse_shard(text: &str) -> anyhow::Result<Shard> {
    Ok(Shard::parse_or_env(text)?)
}

fn run_extract(args: ExtractArgs, quiet: bool) -> anyhow::Result<()> {
    let mut config = ser_features::read_features_config(&args.config).context("reading the feature config")?;
    if let Some(channel) = args.channel {
        if config.augment.take().is_some() {
            tracing::info!("--channel {channel}: no augmented copies (the table is for scoring)");
        }
        config.channel = Some(channel);
        config.validate().with_context(|| format!("--channel {channel} with {}", args.config.display()))?;
    }
    let jobs = args.jobs.or_else(extract::slurm_cpus_per_task);
    if let Some(jobs) = jobs {
        if jobs == 0 {
            bail!("--jobs 0: give at least 1");
        }
        rayon::ThreadPoolBuilder::new().num_threads(jobs).build_global().context("setting --jobs")?;
    }
    let source = match (&args.input, &args.manifest) {
        (Some(root), None) => {
            if !root.is_dir() {
                bail!("--in {}: no such folder; for RAVDESS, see `make data`", root.display());
            }
            let corpus = match args.corpus {
                CorpusArg::Ravdess => Corpus::Ravdess,
                CorpusArg::Tess => Corpus::Tess,
                CorpusArg::Emodb => Corpus::Emodb,
                CorpusArg::Savee => Corpus::Savee,
                CorpusArg::CremaD => Corpus::CremaD,
                CorpusArg::Nemo => Corpus::Nemo,
            };
            Source::Folder { root: root.clone(), corpus }
        }
        (None, Some(manifest)) => Source::Manifest { path: manifest.clone() },
        _ => unreachable!("clap requires exactly one of --in and --manifest"),
    };
    let started = Instant::now();
    let mut discovery = extract::discover(&source, &config).context("finding clips")?;
    for (reason, count) in &discovery.excluded {
        tracing::info!("excluded {count} files: {reason}");
    }
    let mut clips: Vec<ClipInput> = discovery.clips;
    let shard = args.shard.as_deref().map(parse_shard).transpose()?;
    if let Some(shard) = shard {
        clips.retain(|c| shard.contains(&c.meta.clip_id));
        discovery.rejects.retain(|r| {
            let stem = Path::new(&r.path).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            shard.contains(&stem)
        });
        tracing::info!("shard {}/{}: {} clips", shard.index, shard.count, clips.len());
    }
    if clips.is_empty() && discovery.rejects.is_empty() {
        bail!("no clips found in {:?}; expected WAV files named by the corpus convention", source);
    }
    if args.strict
        && let Some(r) = discovery.rejects.first()
    {
        bail!("{}: {} (--strict)", r.path, r.reason);
    }
    tracing::info!("extracting {} clips on {} threads", clips.len(), rayon::current_num_threads());
    let analyzer = dsp::Analyzer::new(&config);
    let reporter = BarReporter::new("clips", quiet);
    tracing::info!("labels: {}", discovery.labels.join(", "));
    let (summary, mut rejects) =
        extract::extract_to_table(&clips, &discovery.labels, &analyzer, &args.out, args.strict, shard, &reporter)
            .with_context(|| format!("extracting features to {}", args.out.display()))?;
    rejects.extend(discovery.rejects);
    rejects.sort_by(|a, b| a.path.cmp(&b.path));
    let rejects_path = extract::rejects_path(&args.out);
    io::write_rejects(&rejects_path, &rejects)?;
    let seconds = started.elapsed().as_secs_f64();
    if !rejects.is_empty() {
        tracing::warn!("{} files rejected; see {}", rejects.len(), rejects_path.display());
        for r in rejects.iter().take(10) {
            tracing::warn!("  {}: {}", r.path, r.reason);
        }
    }
    tracing::info!(
        "wrote {} rows to {} in {seconds:.2} s ({:.0} clips/s)",
        summary.rows,
        args.out.display(),
        summary.rows as f64 / seconds
    );
    let mut summary = serde_json::to_value(&summary)?;
    summary["excluded"] = serde_json::to_value(&discovery.excluded)?;
    summary["rejects"] = rejects.len().into();
    summary["seconds"] = ((seconds * 1000.0).round() / 1000.0).into();
    println!("{summary}");
    Ok(())
}

fn run_split(args: SplitArgs) -> anyhow::Result<()> {
    let config = ser_features::read_split_config(&args.config).context("reading the split config")?;
    let table = io::read_feature_table(&args.features).context("reading the feature table")?;
    // Augmented copies follow their clip into training (ser-model); the split assigns clips.
    let keys: Vec<ClipKey> = table
        .rows
        .iter()
        .filter(|r| r.source_clip_id.is_none())
        .map(|r| ClipKey { clip_id: &r.clip_id, corpus: &r.corpus, speaker: &r.speaker, label: r.label.as_deref() })
        .collect();
    let manifest_parts = match &config {
        ser_features::SplitConfig::Manifest { manifest } => Some(io::read_manifest_splits(manifest)?),
        _ => None,
    };
    let splits = make_splits(&keys, &config, &table.config.hash(), manifest_parts.as_ref())
        .with_context(|| format!("splitting {}", args.features.display()))?;
    io::write_splits(&args.out, &splits)?;
    let counts: Vec<serde_json::Value> = splits
        .counts()
        .into_iter()
        .map(|((fold, part), n)| serde_json::json!({"fold": fold, "split": part.as_str(), "clips": n}))
        .collect();
    tracing::info!("wrote {} folds to {}", splits.n_folds, args.out.display());
    println!("{}", serde_json::json!({"output": args.out, "n_folds": splits.n_folds, "counts": counts}));
    Ok(())
}

fn run_synth(args: SynthArgs, quiet: bool) -> anyhow::Result<()> {
    if args.speakers == 0 || args.speakers > 99 {
        bail!("--speakers {}: must be in 1..=99", args.speakers);
    }
    let names = synth::clip_names(args.speakers);
    let reporter = BarReporter::new("synthetic clips", quiet);
    reporter.on_start(names.len());
    let done = std::sync::atomic::AtomicUsize::new(0);
    names.par_iter().try_for_each(|(name, actor, emotion, intensity, statement, repetition)| {
        let samples = synth::synth_clip(args.seed, *actor, *emotion, *intensity, *statement, *repetition);
        let bytes = audio::encode_wav_i16(&samples, synth::SYNTH_SAMPLE_RATE);
        io::write_atomic(&args.out.join(name), &bytes)?;
        reporter.on_progress(done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1);
        anyhow::Ok(())
    })?;
    reporter.on_complete();
    tracing::info!("wrote {} clips to {}", names.len(), args.out.display());
    println!(
        "{}",
        serde_json::json!({"output": args.out, "clips": names.len(), "speakers": args.speakers, "seed": args.seed})
    );
    Ok(())
}

fn run_merge(args: MergeArgs) -> anyhow::Result<()> {
    // merge_tables joins the parts' rejects files into the merged table's too.
    let rows = extract::merge_tables(&args.parts, &args.out).context("merging part tables")?;
    let rejects = io::read_rejects(&extract::rejects_path(&args.out))?;
    println!("{}", serde_json::json!({"output": args.out, "rows": rows, "rejects": rejects.len()}));
    Ok(())
}

fn run_features(args: FeaturesArgs) -> anyhow::Result<()> {
    let config = ser_features::read_features_config(&args.config)?;
    let analyzer = dsp::Analyzer::new(&config);
    let features = extract::read_file_features(&args.input, &analyzer)?;
    match args.out.extension().and_then(|e| e.to_str()) {
        Some("npy") => io::write_features_npy(&args.out, &features)?,
        Some("json") => io::write_features_json(&args.out, &features)?,
        _ => bail!("--out {}: give a .npy or .json file", args.out.display()),
    }
    println!("{}", serde_json::json!({"output": args.out, "frames": features.n_frames, "coeffs": features.n_coeffs}));
    Ok(())
}

fn run_inspect(path: &Path) -> anyhow::Result<()> {
    let table = io::read_feature_table(path)?;
    let mut labels = std::collections::BTreeMap::<String, usize>::new();
    let mut speakers = std::collections::BTreeSet::new();
    for r in &table.rows {
        *labels.entry(r.label.clone().unwrap_or_else(|| "(none)".into())).or_default() += 1;
        speakers.insert(r.speaker.clone());
    }
    let durations: Vec<f64> = table.rows.iter().map(|r| r.duration_s).collect();
    let mean_duration = durations.iter().sum::<f64>() / durations.len().max(1) as f64;
    println!(
        "{}",
        serde_json::json!({
            "path": path,
            "rows": table.rows.len(),
            "n_coeffs": table.n_coeffs,
            "frames": table.config.frames,
            "labels": labels,
            "speakers": speakers.len(),
            "mean_duration_s": (mean_duration * 1000.0).round() / 1000.0,
            "features_config": table.config,
            "features_config_hash": table.config.hash(),
        })
    );
    Ok(())
}
