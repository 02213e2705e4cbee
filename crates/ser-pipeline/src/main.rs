//! `ser-pipeline`: resolves a pipeline (its bases merged in) and writes what make runs.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use ser_pipeline::{Stage, io, plan};

const EXAMPLES: &str = "\
Examples:
  ser-pipeline plan ravdess-deploy --pipelines pipelines --artifacts artifacts --out artifacts/ravdess-deploy/pipeline/plan.mk
  ser-pipeline show ravdess-deploy              # the pipeline with its bases merged in, as YAML
  ser-pipeline show ravdess-deploy --stage model  # one stage's params, as the stage reads them
  ser-pipeline list                             # every pipeline and what it extends";

/// Pipelines: a base merged with what differs, resolved into each stage's params and make's plan.
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
    /// Resolve a pipeline and those it stands on, write their stages' params files (each only
    /// when its content changed) and the make plan.
    Plan(PlanArgs),
    /// Print a resolved pipeline (or one stage's params) as YAML.
    Show(ShowArgs),
    /// List the pipelines of a folder: name, base, data, folds.
    List(ListArgs),
}

#[derive(Debug, Args)]
struct PlanArgs {
    /// The pipeline's name (pipelines/<name>.yaml).
    name: String,
    /// The folder of pipeline files.
    #[arg(long, default_value = "pipelines")]
    pipelines: PathBuf,
    /// The artifacts folder: each pipeline's resolved params go to <artifacts>/<name>/pipeline/.
    #[arg(long, default_value = "artifacts")]
    artifacts: PathBuf,
    /// The plan to write (a make fragment).
    #[arg(long)]
    out: PathBuf,
}

#[derive(Debug, Args)]
struct ShowArgs {
    name: String,
    #[arg(long, default_value = "pipelines")]
    pipelines: PathBuf,
    /// One stage's params only (features, split, model, ensemble, tune, eval, infer).
    #[arg(long)]
    stage: Option<String>,
}

#[derive(Debug, Args)]
struct ListArgs {
    #[arg(long, default_value = "pipelines")]
    pipelines: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    cli.log.init("warn,ser_pipeline=info");
    ser_cli::exit(run(cli.command))
}

fn run(command: Command) -> Result<()> {
    match command {
        Command::Plan(args) => {
            let all = plan::load_closure(&args.pipelines, &args.name)?;
            for pipeline in all.values() {
                let dir = io::resolved_dir(&args.artifacts, &pipeline.name);
                for path in io::write_resolved(&dir, &pipeline.resolved_files())? {
                    tracing::info!("{}: changed", path.display());
                }
            }
            let text = plan::plan(&args.name, &all);
            io::write_plan(&args.out, &text).with_context(|| format!("writing {}", args.out.display()))?;
            let summary = serde_json::json!({"pipeline": args.name, "plan": args.out, "pipelines": all.keys().collect::<Vec<_>>()});
            println!("{summary}");
        }
        Command::Show(args) => {
            let pipeline = ser_pipeline::load(&args.pipelines, &args.name)?;
            match args.stage {
                Some(key) => {
                    let stage = Stage::ALL.into_iter().find(|s| s.key() == key).with_context(|| {
                        format!("--stage {key}: give one of features, split, model, ensemble, tune, eval, infer")
                    })?;
                    let text = pipeline.sections.get(&stage).with_context(|| {
                        format!(
                            "pipeline {} has no {key} section (its stage runs with its defaults, or not at all)",
                            args.name
                        )
                    })?;
                    print!("{text}");
                }
                None => {
                    let data: Vec<&str> = pipeline.data.iter().map(|d| d.name.as_str()).collect();
                    println!(
                        "# pipeline {}, from {}",
                        pipeline.name,
                        pipeline.files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(" + ")
                    );
                    println!("data: [{}]", data.join(", "));
                    for (stage, text) in &pipeline.sections {
                        println!("{}:", stage.key());
                        for line in text.lines() {
                            println!("  {line}");
                        }
                    }
                }
            }
        }
        Command::List(args) => {
            let mut rows = Vec::new();
            for name in io::pipeline_names(&args.pipelines)? {
                let pipeline = ser_pipeline::load(&args.pipelines, &name)?;
                let base = pipeline.files.len().checked_sub(2).map_or(String::new(), |i| {
                    format!("extends {}", pipeline.files[i].file_stem().unwrap_or_default().to_string_lossy())
                });
                let data: Vec<&str> = pipeline.data.iter().map(|d| d.name.as_str()).collect();
                let folds = match (pipeline.n_folds(), pipeline.cross_validation()) {
                    (Some(k), _) => format!("{k} folds"),
                    (None, Some(cv)) => format!("every clip (figures: {cv})"),
                    (None, None) => "one split".into(),
                };
                let members = pipeline
                    .ensemble
                    .as_ref()
                    .map_or(String::new(), |e| format!(", ensemble of {}", e.seeds.len() + e.pipelines.len()));
                rows.push([name, base, data.join("+"), format!("{folds}{members}")]);
            }
            let width = |c: usize| rows.iter().map(|r| r[c].len()).max().unwrap_or(0);
            let (w0, w1, w2) = (width(0), width(1), width(2));
            for [name, base, data, folds] in rows {
                println!("{name:<w0$}  {base:<w1$}  {data:<w2$}  {folds}");
            }
        }
    }
    Ok(())
}
