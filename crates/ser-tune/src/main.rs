//! `ser-tune`: seeded random search over ser-model's hyperparameters.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use ser_features::extract::Shard;
use ser_tune::trials::{SearchData, SearchOptions};
use ser_tune::{TuneConfig, merge, run_search};

const EXAMPLES: &str = "\
Examples:
  # --config: a stage's params as make writes them, artifacts/<pipeline>/pipeline/<stage>.yaml
  # (or: ser-pipeline show <pipeline> --stage <stage>)
  ser-tune run --config artifacts/ravdess/pipeline/tune.yaml --base artifacts/ravdess/pipeline/model.yaml \\
      --features data/features/ravdess/features.parquet --splits data/features/ravdess/splits.parquet \\
      --out artifacts/ravdess/tune --jobs 2
  # the same search split over 8 array tasks (Slurm: sbatch --array=0-7; Kubernetes: an indexed Job
  # with completions 8 and SHARD_COUNT=8), then one merge:
  ser-tune run ... --out artifacts/ravdess/tune --shard env
  ser-tune merge --out artifacts/ravdess/tune artifacts/ravdess/tune
  ser-model train --config artifacts/ravdess/tune/best.yaml ...   # the final model

A killed search loses at most the trials in flight: run the same command again and it skips
every finished trial. Exit status: 0 success, 1 failure, 2 usage error.";

/// Seeded random hyperparameter search that loses no finished trial.
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
    /// Run (or resume) the trials; without --shard, also write trials.csv and best.yaml.
    Run(RunArgs),
    /// Join the trials of one or more search directories (shards) into trials.csv and best.yaml.
    Merge(MergeArgs),
}

#[derive(Debug, Args)]
struct RunArgs {
    /// The search space and budgets (tune.yaml).
    #[arg(long)]
    config: PathBuf,
    /// The model.yaml every trial starts from.
    #[arg(long)]
    base: PathBuf,
    #[arg(long)]
    features: PathBuf,
    #[arg(long)]
    splits: PathBuf,
    /// The fold of a k-fold split file.
    #[arg(long, default_value_t = 0)]
    fold: u32,
    /// The search directory: trials/, search.json, trials.csv, best.yaml.
    #[arg(long)]
    out: PathBuf,
    /// Trials trained at once on this machine; the cores are divided between them.
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    /// Run only trials whose id modulo n is i (`i/n`), or `env` for a Slurm array task or a
    /// Kubernetes indexed Job (SLURM_ARRAY_TASK_ID/COUNT, or JOB_COMPLETION_INDEX + SHARD_COUNT).
    #[arg(long)]
    shard: Option<String>,
    /// Cores the whole search may use, divided between --jobs [default: SLURM_CPUS_PER_TASK
    /// inside a Slurm job that sets it, else every core]
    #[arg(long)]
    threads: Option<usize>,
    #[command(flatten)]
    device: ser_cli::DeviceArgs,
}

#[derive(Debug, Args)]
struct MergeArgs {
    /// Where trials.csv, best.yaml and best.json go.
    #[arg(long)]
    out: PathBuf,
    /// Search directories to join (each holds trials/).
    #[arg(required = true)]
    dirs: Vec<PathBuf>,
}

fn main() -> ExitCode {
    // SAFETY: first thing in main; no other thread exists yet.
    unsafe { ser_model::use_inline_elementwise_ops() };
    let cli = Cli::parse();
    cli.log.init("warn,ser_tune=info");
    ser_cli::exit(run(cli))
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run(args) => run_run(args),
        Command::Merge(args) => run_merge(args),
    }
}

fn print_summary(summary: &ser_tune::trials::MergeSummary, out: &std::path::Path) {
    println!(
        "{}",
        serde_json::json!({
            "trials": summary.trials,
            "done": summary.done,
            "failed": summary.failed,
            "pruned": summary.pruned,
            "best_trial": summary.best.as_ref().map(|b| b.trial),
            "best_objective": summary.best.as_ref().and_then(|b| b.objective),
            "best_params": summary.best.as_ref().map(|b| &b.params),
            "table": out.join("trials.csv"),
            "best_yaml": summary.best.as_ref().map(|_| out.join("best.yaml")),
        })
    );
}

fn run_run(args: RunArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.config).with_context(|| format!("reading {}", args.config.display()))?;
    let tune = TuneConfig::from_yaml(&args.config, &text)?;
    let base = ser_model::io::read_model_config(&args.base).context("reading the base model config")?;
    if base.early_stopping_on != ser_model::config::StoppingPart::Val {
        bail!(
            "{}: early_stopping_on must be val for a search: trials are compared on the val part",
            args.base.display()
        );
    }
    if let Err(m) = tune.trial_config(&base, 0) {
        bail!("{}: {m}", args.config.display());
    }
    let shard = args.shard.as_deref().map(Shard::parse_or_env).transpose()?;
    let device = ser_model::select_device(args.device.wants_cuda())?;
    let ser_model::io::SplitData { table, train, val, provenance, .. } =
        ser_model::io::load_split(&args.features, &args.splits, args.fold)
            .context("reading the feature table and split file")?;
    let data = SearchData { train: &train, val: &val, features_config: &table.config, provenance };
    let threads = match args.threads {
        Some(0) => bail!("--threads 0: give at least 1"),
        Some(n) => Some(n),
        None => ser_features::extract::slurm_cpus_per_task(),
    };
    let options = SearchOptions { out_dir: &args.out, jobs: args.jobs, shard, device, threads };
    run_search(&tune, &base, &data, &options).with_context(|| format!("searching into {}", args.out.display()))?;
    if shard.is_none() {
        let summary = merge(std::slice::from_ref(&args.out), &args.out)?;
        print_summary(&summary, &args.out);
    } else {
        println!("{}", serde_json::json!({"out": args.out, "shard": args.shard}));
    }
    Ok(())
}

fn run_merge(args: MergeArgs) -> anyhow::Result<()> {
    let summary = merge(&args.dirs, &args.out)?;
    if summary.best.is_none() {
        eprintln!("warning: no finished trial among {} records: no best.yaml", summary.trials);
    }
    print_summary(&summary, &args.out);
    Ok(())
}
