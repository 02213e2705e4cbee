//! `ser-eval`: predictions in, metrics, confusion matrices, curves and a report out.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use ser_eval::EvalConfig;
use ser_eval::compare::{diff, diff_markdown};
use ser_eval::io::{read_json, write_atomic};
use ser_eval::report::{EvalInputs, run_eval};

const EXAMPLES: &str = "\
Examples:
  # --config: a stage's params as make writes them, artifacts/<pipeline>/pipeline/<stage>.yaml
  # (or: ser-pipeline show <pipeline> --stage <stage>)
  ser-eval report --predictions artifacts/ravdess/predictions/predictions.parquet \\
      --checkpoint artifacts/ravdess/model --out artifacts/ravdess/eval
  ser-eval report --config artifacts/ravdess-to-nemo/pipeline/eval.yaml \\
      --predictions artifacts/ravdess-to-nemo/predictions/predictions.parquet --out artifacts/ravdess-to-nemo/eval
  ser-eval report --config eval.yaml --predictions seed42.parquet seed43.parquet seed44.parquet --out eval/seeds
  ser-eval compare artifacts/ravdess/eval artifacts/ravdess-speaker/eval

Exit status: 0 success, 1 failure, 2 usage error.";

/// Metrics, confusion matrices, training curves and readable reports from predictions files.
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
    /// Evaluate one or more predictions files (folds or seeds): metrics.json, confusion.csv,
    /// pictures, report.md and report.html in --out.
    Report(ReportArgs),
    /// Two evaluations side by side: a diff table of their metrics.json (files or eval dirs).
    Compare(CompareArgs),
    /// The clean test part's evaluation and one per channel change side by side (make
    /// robustness): robustness.md and robustness.json in --out.
    Robustness(RobustnessArgs),
}

#[derive(Debug, Args)]
struct ReportArgs {
    /// The stage's params file (eval.yaml); without it, every key takes its default.
    #[arg(long)]
    config: Option<PathBuf>,
    /// predictions.parquet files (ser-model predict, or any writer with the same columns).
    #[arg(long, num_args = 1.., required = true)]
    predictions: Vec<PathBuf>,
    /// A checkpoint directory: its history.csv and model.json feed the curves and provenance.
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// history.csv files for the training curves, one per trained run (each fold's, each
    /// ensemble member's), drawn together; overrides the checkpoint's.
    #[arg(long, num_args = 1..)]
    history: Vec<PathBuf>,
    /// A model.json for the provenance section (overrides the checkpoint's).
    #[arg(long)]
    model_json: Option<PathBuf>,
    /// The report's title.
    #[arg(long, default_value = "Speech emotion recognition: evaluation")]
    title: String,
    /// Override the config's bootstrap seed.
    #[arg(long)]
    seed: Option<u64>,
    /// The directory to write.
    #[arg(long)]
    out: PathBuf,
    /// Also write the headline figures and provenance to this summary.json (with --pipeline).
    #[arg(long, requires = "pipeline")]
    summary: Option<PathBuf>,
    /// The pipeline's name, recorded in the summary.
    #[arg(long)]
    pipeline: Option<String>,
}

#[derive(Debug, Args)]
struct CompareArgs {
    /// The first evaluation: a metrics.json or the directory holding it.
    a: PathBuf,
    /// The second evaluation.
    b: PathBuf,
    /// Also write the table to this Markdown file.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct RobustnessArgs {
    /// The clean test part's evaluation: a metrics.json or the directory holding it.
    #[arg(long)]
    clean: PathBuf,
    /// One evaluation per condition, as NAME=PATH (a metrics.json or its directory), in table order.
    #[arg(required = true, value_parser = parse_condition)]
    conditions: Vec<(String, PathBuf)>,
    /// The directory to write robustness.md and robustness.json to.
    #[arg(long)]
    out: PathBuf,
}

fn parse_condition(text: &str) -> Result<(String, PathBuf), String> {
    match text.split_once('=') {
        Some((name, path)) if !name.is_empty() && !path.is_empty() => Ok((name.to_string(), PathBuf::from(path))),
        _ => Err(format!("`{text}`: give NAME=PATH, e.g. noise_10db=artifacts/ravdess/robustness/noise_10db/eval")),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    cli.log.init("warn,ser_eval=info");
    ser_cli::exit(run(cli))
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Report(args) => run_report(args),
        Command::Compare(args) => run_compare(args),
        Command::Robustness(args) => run_robustness(args),
    }
}

fn run_report(args: ReportArgs) -> anyhow::Result<()> {
    let mut config = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            EvalConfig::from_yaml(path, &text)?
        }
        None => EvalConfig::defaults(),
    };
    if let Some(seed) = args.seed {
        config.seed = seed;
    }
    let from_checkpoint = |name: &str| -> anyhow::Result<Option<PathBuf>> {
        let Some(dir) = &args.checkpoint else { return Ok(None) };
        if !dir.is_dir() {
            bail!("--checkpoint {}: not a directory", dir.display());
        }
        let path = dir.join(name);
        Ok(path.exists().then_some(path))
    };
    let inputs = EvalInputs {
        predictions: args.predictions.clone(),
        histories: if args.history.is_empty() {
            from_checkpoint("history.csv")?.into_iter().collect()
        } else {
            args.history.clone()
        },
        model_json: match args.model_json.clone() {
            Some(p) => Some(p),
            None => from_checkpoint("model.json")?,
        },
        title: args.title.clone(),
    };
    let outcome = run_eval(&inputs, &config, &args.out).context("evaluating predictions")?;
    let m = &outcome.metrics.metrics;
    let ci = m
        .bootstrap
        .as_ref()
        .map(|b| format!(" [{:.1}, {:.1}]", b.accuracy.low * 100.0, b.accuracy.high * 100.0))
        .unwrap_or_default();
    println!(
        "{} clips: accuracy {:.1}%{ci}, UAR {:.1}%, macro F1 {:.1}%, weighted F1 {:.1}%",
        m.n,
        m.accuracy * 100.0,
        m.uar * 100.0,
        m.macro_f1 * 100.0,
        m.weighted_f1 * 100.0
    );
    if let Some(across) = &outcome.metrics.across_runs {
        let a = &across["accuracy"];
        println!(
            "across {} runs: accuracy {:.1}% +- {:.1} (min {:.1}, max {:.1})",
            outcome.metrics.runs.len(),
            a.mean * 100.0,
            a.std * 100.0,
            a.min * 100.0,
            a.max * 100.0
        );
    }
    if let Some(path) = &args.summary {
        let value = ser_eval::report::summary(&outcome.metrics, args.pipeline.as_deref().unwrap_or(""));
        ser_eval::io::write_json(path, &value)?;
    }
    if let Some(why) = &outcome.pictures_skipped {
        eprintln!("warning: pictures skipped: {why}");
    }
    println!("{}", args.out.join("report.md").display());
    Ok(())
}

fn metrics_path(path: &Path) -> PathBuf {
    if path.is_dir() { path.join("metrics.json") } else { path.to_path_buf() }
}

fn run_compare(args: CompareArgs) -> anyhow::Result<()> {
    let (pa, pb) = (metrics_path(&args.a), metrics_path(&args.b));
    let a = read_json(&pa)?;
    let b = read_json(&pb)?;
    let rows = diff(&a, &b);
    if rows.is_empty() {
        bail!("{} and {} share no metric: are they metrics.json files of ser-eval?", pa.display(), pb.display());
    }
    let table = diff_markdown(&pa.display().to_string(), &pb.display().to_string(), &rows);
    print!("{table}");
    if let Some(out) = &args.out {
        write_atomic(out, table.as_bytes())?;
    }
    Ok(())
}

fn run_robustness(args: RobustnessArgs) -> anyhow::Result<()> {
    let clean_path = metrics_path(&args.clean);
    let clean = read_json(&clean_path)?;
    let mut conditions = Vec::new();
    for (name, path) in &args.conditions {
        let path = metrics_path(path);
        conditions.push((name.clone(), read_json(&path)?, path.display().to_string()));
    }
    let rows = ser_eval::robustness::table((&clean, &clean_path.display().to_string()), &conditions)?;
    let table = ser_eval::robustness::markdown(&rows);
    let md = format!(
        "# Robustness: channel changes\n\nEach condition is the clean evaluation's clips through one channel \
         change, scored by the same checkpoints ({} clips; clean: {}).\n\n{table}",
        rows[0].clips,
        clean_path.display()
    );
    write_atomic(&args.out.join("robustness.md"), md.as_bytes())?;
    ser_eval::io::write_json(
        &args.out.join("robustness.json"),
        &serde_json::json!({ "conditions": rows, "summary": ser_eval::robustness::summary(&rows) }),
    )?;
    print!("{table}");
    Ok(())
}
