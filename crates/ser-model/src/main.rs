//! `ser-model`: train the network on a feature table and split file, and predict a feature table.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use candle_core::Device;
use clap::{Args, Parser, Subcommand, ValueEnum};
use ser_cli::DeviceArgs;
use ser_features::split::SplitPart;
use ser_model::checkpoint::{self, EpochRecord};
use ser_model::step::Engine;
use ser_model::train::{EpochReporter, Resume, TrainData, TrainOptions};
use ser_model::{data, io, predict};

const EXAMPLES: &str = "\
Examples:
  # --config: a stage's params as make writes them, artifacts/<pipeline>/pipeline/<stage>.yaml
  # (or: ser-pipeline show <pipeline> --stage <stage>)
  ser-model train --config artifacts/ravdess/pipeline/model.yaml --features data/features/ravdess/features.parquet \\
      --splits data/features/ravdess/splits.parquet --out artifacts/ravdess/model
  ser-model train ... --resume          # continue an interrupted run in the same --out
  ser-model train ... --resume-if-interrupted   # the same, or train anew if --out holds no such run (make)
  ser-model predict --checkpoint artifacts/ravdess/model --features data/features/ravdess/features.parquet \\
      --splits data/features/ravdess/splits.parquet --part test --out artifacts/ravdess/predictions/predictions.parquet
  ser-model export --checkpoint artifacts/ravdess/model --out artifacts/ravdess/model.onnx
  ser-model ensemble --config artifacts/ravdess-deploy/pipeline/ensemble.yaml --out artifacts/ravdess-deploy/model \\
      artifacts/ravdess-deploy/members/seed-42 artifacts/ravdess-deploy/members/seed-43 \\
      artifacts/ravdess-deploy/members/seed-44 artifacts/ravdess-deploy-room/model \\
      artifacts/ravdess-deploy-trim/model artifacts/ravdess-deploy-gain/model

Exit status: 0 success, 1 failure, 2 usage error.";

/// The CNN + BiLSTM speech-emotion classifier: training, checkpoints, batch prediction.
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
    /// Train on the train part of a split, early-stopping on its val part; write a checkpoint dir.
    Train(TrainArgs),
    /// Predict clips of a feature table with a checkpoint; write predictions.parquet.
    Predict(PredictArgs),
    /// Write a checkpoint as one ONNX model (opset 17): raw features in, probabilities out.
    Export(ExportArgs),
    /// Join trained checkpoints into one that answers with the mean of their probabilities.
    Ensemble(EnsembleArgs),
}

#[derive(Debug, Args)]
struct EnsembleArgs {
    /// The checkpoint directory to write; predict, export and ser-infer load it like any other.
    #[arg(long)]
    out: PathBuf,
    /// A pipeline's ensemble.yaml: the members must have been trained with its seeds, in order.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The member checkpoint directories (same labels and feature config); an ensemble given
    /// here joins with its members.
    #[arg(required = true)]
    members: Vec<PathBuf>,
}

#[derive(Debug, Args)]
struct ExportArgs {
    /// A checkpoint directory (ser-model train).
    #[arg(long)]
    checkpoint: PathBuf,
    /// The ONNX file to write.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum EngineArg {
    /// The hand-written forward and backward pass (CPU only; the fastest there).
    Fused,
    /// candle's graph and autograd (any device; the path a GPU takes).
    Candle,
}

/// The device `--device` names.
fn device(args: &DeviceArgs) -> anyhow::Result<Device> {
    Ok(ser_model::select_device(args.wants_cuda())?)
}

#[derive(Debug, Args)]
struct TrainArgs {
    /// The stage's params file (model.yaml).
    #[arg(long)]
    config: PathBuf,
    /// The feature table (ser-features extract).
    #[arg(long)]
    features: PathBuf,
    /// The split file (ser-features split).
    #[arg(long)]
    splits: PathBuf,
    /// The fold of a k-fold split file.
    #[arg(long, default_value_t = 0)]
    fold: u32,
    /// The checkpoint directory to write.
    #[arg(long)]
    out: PathBuf,
    /// Override the config's seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Continue the run in `--out` from its last finished epoch (an interrupted run, or a finished
    /// one given more `max_epochs`); refuses one of another config or other data.
    #[arg(long, conflicts_with = "resume_if_interrupted")]
    resume: bool,
    /// Continue the run in `--out` only if it was interrupted (no model.json) with the same config
    /// and data; otherwise train from the first epoch, saying why (what make passes).
    #[arg(long)]
    resume_if_interrupted: bool,
    #[command(flatten)]
    device: DeviceArgs,
    /// How each training step is computed [default: fused on cpu, candle on cuda]
    #[arg(long, value_enum)]
    engine: Option<EngineArg>,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq)]
enum PartArg {
    Train,
    Val,
    Test,
    All,
}

#[derive(Debug, Args)]
struct PredictArgs {
    /// A checkpoint directory (ser-model train).
    #[arg(long)]
    checkpoint: PathBuf,
    /// The feature table to predict; its feature config must match the checkpoint's.
    #[arg(long)]
    features: PathBuf,
    /// A split file, to predict one part only.
    #[arg(long, required_if_eq_any([("part", "train"), ("part", "val"), ("part", "test")]))]
    splits: Option<PathBuf>,
    #[arg(long, default_value_t = 0)]
    fold: u32,
    /// Which part of the split to predict.
    #[arg(long, value_enum, default_value = "all")]
    part: PartArg,
    /// The predictions file to write (Parquet).
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    device: DeviceArgs,
}

fn main() -> ExitCode {
    // SAFETY: first thing in main; no other thread exists yet.
    unsafe { ser_model::use_inline_elementwise_ops() };
    let cli = Cli::parse();
    cli.log.init("warn,ser_model=info,ser_features=info");
    ser_cli::exit(run(cli))
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Train(args) => run_train(args),
        Command::Predict(args) => run_predict(args),
        Command::Export(args) => run_export(args),
        Command::Ensemble(args) => run_ensemble(args),
    }
}

fn run_ensemble(args: EnsembleArgs) -> anyhow::Result<()> {
    let config =
        args.config.as_deref().map(io::read_ensemble_config).transpose().context("reading the ensemble config")?;
    let ensemble = io::write_ensemble(&args.members, &args.out, config.as_ref())
        .with_context(|| format!("writing the ensemble {}", args.out.display()))?;
    tracing::info!("wrote {} ({} members)", args.out.display(), ensemble.members.len());
    let seeds: Vec<u64> = ensemble.members.iter().map(|m| m.model.seed).collect();
    println!("{}", serde_json::json!({"checkpoint": args.out, "members": ensemble.members.len(), "seeds": seeds}));
    Ok(())
}

fn run_export(args: ExportArgs) -> anyhow::Result<()> {
    let bytes = io::export_onnx(&args.checkpoint, &args.out)
        .with_context(|| format!("exporting {} to {}", args.checkpoint.display(), args.out.display()))?;
    tracing::info!("wrote {} ({bytes} bytes, opset {})", args.out.display(), ser_model::onnx::OPSET);
    println!("{}", serde_json::json!({"output": args.out, "bytes": bytes, "opset": ser_model::onnx::OPSET}));
    Ok(())
}

/// One log line per epoch on stderr.
struct EpochLog;

impl EpochReporter for EpochLog {
    fn on_epoch(&self, r: &EpochRecord, max_epochs: usize, is_best: bool) {
        let val = match (r.val_loss, r.val_accuracy, r.val_macro_f1, r.val_uar) {
            (Some(loss), Some(acc), Some(f1), Some(uar)) => {
                format!("  val_loss {loss:.4}  val_acc {acc:.3}  val_f1 {f1:.3}  val_uar {uar:.3}")
            }
            _ => String::new(),
        };
        tracing::info!(
            "epoch {:>3}/{max_epochs}  loss {:.4}  acc {:.3}{val}  lr {:.1e}  {:.1}s{}",
            r.epoch,
            r.train_loss,
            r.train_accuracy,
            r.learning_rate,
            r.seconds,
            // Without validation every epoch is the latest: nothing to mark.
            if is_best && !val.is_empty() { "  *best" } else { "" }
        );
    }
}

fn run_train(args: TrainArgs) -> anyhow::Result<()> {
    let mut config = io::read_model_config(&args.config).context("reading the model config")?;
    if let Some(seed) = args.seed {
        config.seed = seed;
    }
    let device = device(&args.device)?;
    let engine = match args.engine {
        None => Engine::default_for(&device),
        Some(EngineArg::Fused) => Engine::Fused,
        Some(EngineArg::Candle) => Engine::Candle,
    };
    let io::SplitData { table, train, val, test, mut provenance } =
        io::load_split(&args.features, &args.splits, args.fold).context("reading the feature table and split file")?;
    let val = match config.early_stopping_on {
        ser_model::config::StoppingPart::Val => val,
        ser_model::config::StoppingPart::TestOptimistic => {
            tracing::warn!(
                "early_stopping_on: test_optimistic: the test part drives early stopping; its figures will be optimistic"
            );
            test
        }
        ser_model::config::StoppingPart::None => {
            if !val.is_empty() || !test.is_empty() {
                tracing::warn!(
                    "early_stopping_on: none trains on the train part alone; its {} val and {} test clips go unused",
                    val.len(),
                    test.len()
                );
            }
            val
        }
    };
    provenance.n_val = val.len();
    tracing::info!("training on {} clips, validating on {}, fold {}", train.len(), val.len(), args.fold);
    let data = TrainData { train: &train, val: &val, features_config: &table.config, provenance };
    let resume = match (args.resume, args.resume_if_interrupted) {
        (true, _) => Resume::Always,
        (_, true) => Resume::IfInterrupted,
        _ => Resume::Never,
    };
    let options = TrainOptions { device, engine, out_dir: Some(&args.out), resume };
    let outcome = ser_model::train::train(&data, &config, &options, &EpochLog)
        .with_context(|| format!("training into {}", args.out.display()))?;
    println!(
        "{}",
        serde_json::json!({
            "checkpoint": args.out,
            "best_epoch": outcome.best_epoch,
            "epochs_run": outcome.epochs_run,
            "stopped_early": outcome.stopped_early,
            "metrics": outcome.metrics,
        })
    );
    Ok(())
}

fn run_predict(args: PredictArgs) -> anyhow::Result<()> {
    let device = device(&args.device)?;
    let checkpoint = io::read_checkpoint(&args.checkpoint, &device).context("loading the checkpoint")?;
    let table = ser_features::io::read_feature_table(&args.features).context("reading the feature table")?;
    checkpoint.check_features(&args.features, &table.config)?;
    let (dataset, part_name) = match (args.part, &args.splits) {
        (PartArg::All, _) => (data::whole_table(&table)?, "all"),
        (part, Some(splits_path)) => {
            let splits = ser_features::io::read_splits(splits_path).context("reading the split file")?;
            let (part, name) = match part {
                PartArg::Train => (SplitPart::Train, "train"),
                PartArg::Val => (SplitPart::Val, "val"),
                _ => (SplitPart::Test, "test"),
            };
            (data::part(&table, &splits, args.fold, part)?, name)
        }
        (_, None) => unreachable!("clap requires --splits with --part"),
    };
    let mut predictions = predict::predict(&checkpoint, &dataset)?;
    let corpus_of: std::collections::HashMap<&str, &str> =
        table.rows.iter().map(|r| (r.clip_id.as_str(), r.corpus.as_str())).collect();
    predictions.corpora = Some(
        predictions
            .clip_ids
            .iter()
            .map(|id| corpus_of.get(id.as_str()).copied().unwrap_or_default().to_string())
            .collect(),
    );
    let provenance = [
        ("ser.checkpoint", args.checkpoint.display().to_string()),
        ("ser.checkpoint_weights_sha256", io::sha256_file(&args.checkpoint.join(checkpoint::WEIGHTS_FILE))?),
        ("ser.features_path", args.features.display().to_string()),
        ("ser.features_sha256", io::sha256_file(&args.features)?),
        ("ser.part", part_name.to_string()),
        ("ser.fold", args.fold.to_string()),
        ("ser.protocol", checkpoint.protocol().to_string()),
        ("ser.labels", serde_json::to_string(checkpoint.labels())?),
    ];
    io::write_predictions(&args.out, &predictions, &provenance)?;
    let correct = (0..predictions.clip_ids.len())
        .filter(|&i| predictions.truth[i].as_deref() == Some(predictions.predicted(i)))
        .count();
    let labelled = predictions.truth.iter().filter(|t| t.is_some()).count();
    println!(
        "{}",
        serde_json::json!({
            "output": args.out,
            "part": part_name,
            "clips": predictions.clip_ids.len(),
            "accuracy": if labelled > 0 { Some(correct as f64 / labelled as f64) } else { None },
        })
    );
    Ok(())
}
