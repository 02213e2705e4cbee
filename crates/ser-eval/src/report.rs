//! The stage itself: predictions files in, `metrics.json`, `confusion.csv`, pictures and
//! `report.md` / `report.html` out. Several files (folds, seeds) give each run's metrics, their
//! mean and spread, and the metrics of all predictions pooled.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine;
use serde::Serialize;

use crate::config::ClassSet;
use crate::history::History;
use crate::io::{read_history, read_json, read_predictions, sha256_file, write_atomic, write_json};
use crate::metrics::{Metrics, Spread, evaluate, spread};
use crate::plot::{confusion_picture, curves_picture, ensure_font};
use crate::predictions::{PredictionTable, SharedClasses, restrict_classes};
use crate::{Error, EvalConfig, Result};

/// What one evaluation reads.
#[derive(Debug, Clone)]
pub struct EvalInputs {
    pub predictions: Vec<PathBuf>,
    /// The trained runs' `history.csv` files (a checkpoint's, or each fold's or ensemble
    /// member's), drawn together as the training curves.
    pub histories: Vec<PathBuf>,
    /// A checkpoint's `model.json`, for the provenance section.
    pub model_json: Option<PathBuf>,
    /// Shown as the report's title.
    pub title: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunMetrics {
    pub path: String,
    pub sha256: String,
    pub n: usize,
    pub accuracy: f64,
    pub uar: f64,
    pub macro_f1: f64,
    pub weighted_f1: f64,
    pub log_loss: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct InputProvenance {
    pub path: String,
    pub sha256: String,
    pub rows_without_label: usize,
    pub metadata: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Provenance {
    pub writer: String,
    pub eval_config: EvalConfig,
    pub predictions: Vec<InputProvenance>,
    pub model_json: Option<serde_json::Value>,
    /// The `history.csv` files the curves were drawn from.
    pub histories: Vec<String>,
}

/// `metrics.json`: the headline figures are top-level keys; see ARCHITECTURE.md for all keys.
#[derive(Debug, Clone, Serialize)]
pub struct MetricsFile {
    #[serde(flatten)]
    pub metrics: Metrics,
    /// Each predictions file's own headline figures (one entry for a single file).
    pub runs: Vec<RunMetrics>,
    /// Mean, standard deviation, min and max over `runs`, when there are several.
    pub across_runs: Option<BTreeMap<String, Spread>>,
    /// With `classes: shared` or a list, what was kept and left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_classes: Option<SharedClasses>,
    /// When the predictions name two corpora or more (their `corpus` column), each corpus's
    /// clips scored alone, pooled over the files.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub per_corpus: BTreeMap<String, CorpusMetrics>,
    pub provenance: Provenance,
}

/// One corpus's clips scored alone.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CorpusMetrics {
    pub n: usize,
    pub accuracy: f64,
    pub uar: f64,
    pub macro_f1: f64,
    /// Recall of each class with support there, in class order.
    pub recall: BTreeMap<String, f64>,
    /// The answer given most often there, and the share of the corpus's clips it took.
    pub most_given: String,
    pub most_given_share: f64,
}

/// Each corpus's clips of `tables`, pooled and scored alone; empty unless two corpora or more.
fn per_corpus(tables: &[PredictionTable], config: &EvalConfig) -> BTreeMap<String, CorpusMetrics> {
    let names: std::collections::BTreeSet<&str> =
        tables.iter().filter_map(|t| t.corpora.as_ref()).flatten().map(String::as_str).collect();
    let mut out = BTreeMap::new();
    if names.len() < 2 {
        return out;
    }
    let classes = &tables[0].classes;
    for name in names {
        let (mut truth, mut predicted) = (Vec::new(), Vec::new());
        for t in tables {
            let Some(corpora) = &t.corpora else { continue };
            for (i, c) in corpora.iter().enumerate() {
                if c == name {
                    truth.push(t.truth[i]);
                    predicted.push(t.predicted[i]);
                }
            }
        }
        let m = evaluate(classes, &truth, &predicted, None, &EvalConfig { bootstrap_resamples: 0, ..config.clone() });
        let (most, count) = m
            .per_class
            .iter()
            .map(|c| (&c.label, c.predicted))
            .fold((&classes[0], 0), |best, c| if c.1 > best.1 { c } else { best });
        out.insert(
            name.to_string(),
            CorpusMetrics {
                n: m.n,
                accuracy: m.accuracy,
                uar: m.uar,
                macro_f1: m.macro_f1,
                recall: m.per_class.iter().filter(|c| c.support > 0).map(|c| (c.label.clone(), c.recall)).collect(),
                most_given: most.clone(),
                most_given_share: count as f64 / m.n.max(1) as f64,
            },
        );
    }
    out
}

/// Everything an evaluation wrote.
#[derive(Debug, Clone)]
pub struct EvalOutcome {
    pub metrics: MetricsFile,
    pub files: Vec<PathBuf>,
    /// Why pictures were skipped, if they were.
    pub pictures_skipped: Option<String>,
}

/// Class indices of truth and prediction, and probabilities when every file has them.
type Pooled = (Vec<usize>, Vec<usize>, Option<Vec<Vec<f64>>>);

fn pooled(tables: &[PredictionTable]) -> Result<Pooled> {
    let first = &tables[0];
    let mut truth = Vec::new();
    let mut predicted = Vec::new();
    let mut probabilities = first.probabilities.as_ref().map(|_| Vec::new());
    for table in tables {
        if table.classes != first.classes {
            return Err(Error::file(
                &table.path,
                format!(
                    "its classes [{}] differ from {}'s [{}]; runs evaluated together must share one label list",
                    table.classes.join(", "),
                    first.path.display(),
                    first.classes.join(", ")
                ),
            ));
        }
        truth.extend_from_slice(&table.truth);
        predicted.extend_from_slice(&table.predicted);
        match (&mut probabilities, &table.probabilities) {
            (Some(all), Some(p)) => all.extend(p.iter().cloned()),
            _ => probabilities = None,
        }
    }
    Ok((truth, predicted, probabilities))
}

/// Computes metrics from already-read predictions: one entry per file, pooled headline.
pub fn metrics_file(
    tables: &[PredictionTable],
    hashes: &[String],
    config: &EvalConfig,
    model_json: Option<serde_json::Value>,
    histories: &[PathBuf],
) -> Result<MetricsFile> {
    if tables.is_empty() {
        return Err(Error::Invalid("no predictions files given".into()));
    }
    let (truth, predicted, probabilities) = pooled(tables)?;
    let metrics = evaluate(&tables[0].classes, &truth, &predicted, probabilities.as_deref(), config);
    let mut runs = Vec::new();
    for (table, sha256) in tables.iter().zip(hashes) {
        let m = evaluate(
            &table.classes,
            &table.truth,
            &table.predicted,
            table.probabilities.as_deref(),
            &EvalConfig { bootstrap_resamples: 0, ..config.clone() },
        );
        runs.push(RunMetrics {
            path: table.path.display().to_string(),
            sha256: sha256.clone(),
            n: m.n,
            accuracy: m.accuracy,
            uar: m.uar,
            macro_f1: m.macro_f1,
            weighted_f1: m.weighted_f1,
            log_loss: m.log_loss,
        });
    }
    let across_runs = (runs.len() > 1).then(|| {
        let mut out = BTreeMap::new();
        type Column = (&'static str, fn(&RunMetrics) -> Option<f64>);
        let columns: [Column; 5] = [
            ("accuracy", |r| Some(r.accuracy)),
            ("uar", |r| Some(r.uar)),
            ("macro_f1", |r| Some(r.macro_f1)),
            ("weighted_f1", |r| Some(r.weighted_f1)),
            ("log_loss", |r| r.log_loss),
        ];
        for (name, get) in columns {
            let values: Option<Vec<f64>> = runs.iter().map(get).collect();
            if let Some(values) = values {
                out.insert(name.to_string(), spread(&values));
            }
        }
        out
    });
    let provenance = Provenance {
        writer: format!("ser-eval {}", env!("CARGO_PKG_VERSION")),
        eval_config: config.clone(),
        predictions: tables
            .iter()
            .zip(hashes)
            .map(|(t, h)| InputProvenance {
                path: t.path.display().to_string(),
                sha256: h.clone(),
                rows_without_label: t.n_unlabelled,
                metadata: t.metadata.clone(),
            })
            .collect(),
        model_json,
        histories: histories.iter().map(|p| p.display().to_string()).collect(),
    };
    let per_corpus = per_corpus(tables, config);
    Ok(MetricsFile { metrics, runs, across_runs, shared_classes: None, per_corpus, provenance })
}

/// `confusion.csv`: rows = true class, columns = predicted class, counts.
pub fn confusion_csv(metrics: &Metrics) -> String {
    let mut out = String::from("true\\predicted");
    for label in &metrics.labels {
        out.push(',');
        out.push_str(label);
    }
    out.push('\n');
    for (label, row) in metrics.labels.iter().zip(&metrics.confusion.counts) {
        out.push_str(label);
        for count in row {
            let _ = write!(out, ",{count}");
        }
        out.push('\n');
    }
    out
}

/// A tiny document model rendered both as Markdown and as self-contained HTML.
enum Block {
    Heading(String),
    Paragraph(String),
    Table(Vec<String>, Vec<Vec<String>>),
    List(Vec<String>),
    Image { alt: String, file: String, png: Vec<u8> },
}

fn markdown(title: &str, blocks: &[Block]) -> String {
    let mut out = format!("# {title}\n\n");
    for block in blocks {
        match block {
            Block::Heading(text) => {
                let _ = writeln!(out, "## {text}\n");
            }
            Block::Paragraph(text) => {
                let _ = writeln!(out, "{text}\n");
            }
            Block::Table(header, rows) => {
                let _ = writeln!(out, "| {} |", header.join(" | "));
                let _ = writeln!(out, "|{}", "---|".repeat(header.len()));
                for row in rows {
                    let _ = writeln!(out, "| {} |", row.join(" | "));
                }
                out.push('\n');
            }
            Block::List(items) => {
                for item in items {
                    let _ = writeln!(out, "- {item}");
                }
                out.push('\n');
            }
            Block::Image { alt, file, .. } => {
                let _ = writeln!(out, "![{alt}]({file})\n");
            }
        }
    }
    out
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('`', "")
}

fn html(title: &str, blocks: &[Block]) -> String {
    let mut out = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\n<style>\
         body{{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}}\
         table{{border-collapse:collapse;margin:0.5em 0 1.5em}}td,th{{border:1px solid #ccc;padding:4px 10px;text-align:right}}\
         th{{background:#f3f3f3}}td:first-child,th:first-child{{text-align:left}}img{{max-width:100%}}\
         </style></head><body>\n<h1>{}</h1>\n",
        escape(title),
        escape(title)
    );
    for block in blocks {
        match block {
            Block::Heading(text) => {
                let _ = writeln!(out, "<h2>{}</h2>", escape(text));
            }
            Block::Paragraph(text) => {
                let _ = writeln!(out, "<p>{}</p>", escape(text));
            }
            Block::Table(header, rows) => {
                out.push_str("<table><tr>");
                for h in header {
                    let _ = write!(out, "<th>{}</th>", escape(h));
                }
                out.push_str("</tr>\n");
                for row in rows {
                    out.push_str("<tr>");
                    for cell in row {
                        let _ = write!(out, "<td>{}</td>", escape(cell));
                    }
                    out.push_str("</tr>\n");
                }
                out.push_str("</table>\n");
            }
            Block::List(items) => {
                out.push_str("<ul>");
                for item in items {
                    let _ = write!(out, "<li>{}</li>", escape(item));
                }
                out.push_str("</ul>\n");
            }
            Block::Image { alt, png, .. } => {
                let data = base64::engine::general_purpose::STANDARD.encode(png);
                let _ = writeln!(out, "<p><img alt=\"{}\" src=\"data:image/png;base64,{data}\"></p>", escape(alt));
            }
        }
    }
    out.push_str("</body></html>\n");
    out
}

fn pct(v: f64) -> String {
    format!("{:.1}%", v * 100.0)
}

fn blocks(file: &MetricsFile, pictures: Vec<Block>, config: &EvalConfig) -> Vec<Block> {
    let m = &file.metrics;
    let mut out = Vec::new();
    let n_files = file.runs.len();
    let mut intro = format!(
        "{} clips with a true label from {} predictions file{}.",
        m.n,
        n_files,
        if n_files == 1 { "" } else { "s (figures below pool all of them)" }
    );
    if m.classes_evaluated.len() < m.labels.len() {
        let absent: Vec<&str> =
            m.labels.iter().filter(|l| !m.classes_evaluated.contains(l)).map(|s| s.as_str()).collect();
        let _ = write!(
            intro,
            " Metrics are over the {} of {} classes present in the true labels; absent: {} (predictions of an absent class count as errors).",
            m.classes_evaluated.len(),
            m.labels.len(),
            absent.join(", ")
        );
    }
    if let Some(shared) = &file.shared_classes {
        let dropped: Vec<String> = shared.dropped_labels.iter().map(|(l, n)| format!("{l} ({n} clips)")).collect();
        let _ = write!(
            intro,
            " Scored on the {} classes ({}): those the eval config names, or else those the model and the true labels share, \
             the prediction the most probable of them; left out: the model's classes {} and the labels {}.",
            shared.kept.len(),
            shared.kept.join(", "),
            if shared.dropped_classes.is_empty() { "none".to_string() } else { shared.dropped_classes.join(", ") },
            if dropped.is_empty() { "none".to_string() } else { dropped.join(", ") }
        );
    }
    out.push(Block::Paragraph(intro));

    out.push(Block::Heading("Headline".into()));
    let ci = |name: &str| -> String {
        match (&m.bootstrap, name) {
            (Some(b), "accuracy") => format!("{} - {}", pct(b.accuracy.low), pct(b.accuracy.high)),
            (Some(b), "macro_f1") => format!("{} - {}", pct(b.macro_f1.low), pct(b.macro_f1.high)),
            _ => String::new(),
        }
    };
    let ci_header = match &m.bootstrap {
        Some(b) => format!("{:.0}% CI (bootstrap, {} resamples)", b.confidence * 100.0, b.resamples),
        None => "CI".into(),
    };
    let mut rows: Vec<Vec<String>> = [
        ("accuracy", "accuracy", m.accuracy),
        ("UAR (balanced accuracy)", "uar", m.uar),
        ("macro F1", "macro_f1", m.macro_f1),
        ("weighted F1", "weighted_f1", m.weighted_f1),
        ("macro precision", "macro_precision", m.macro_precision),
    ]
    .iter()
    .map(|(label, key, v)| vec![label.to_string(), pct(*v), ci(key)])
    .collect();
    if let Some(l) = m.log_loss {
        rows.push(vec!["log loss".into(), format!("{l:.4}"), String::new()]);
    }
    out.push(Block::Table(vec!["metric".into(), "value".into(), ci_header], rows));

    if !file.per_corpus.is_empty() {
        out.push(Block::Heading("By corpus".into()));
        let rows = file
            .per_corpus
            .iter()
            .map(|(name, c)| {
                let recall = c.recall.iter().map(|(l, r)| format!("{l} {}", pct(*r))).collect::<Vec<_>>().join(", ");
                vec![
                    name.clone(),
                    c.n.to_string(),
                    pct(c.uar),
                    pct(c.accuracy),
                    pct(c.macro_f1),
                    format!("{} ({})", c.most_given, pct(c.most_given_share)),
                    recall,
                ]
            })
            .collect();
        let header = ["corpus", "clips", "UAR", "accuracy", "macro F1", "most given answer", "recall per class"];
        out.push(Block::Table(header.iter().map(|h| h.to_string()).collect(), rows));
    }

    if let Some(across) = &file.across_runs {
        out.push(Block::Heading(format!("Across {n_files} runs")));
        let rows = across
            .iter()
            .map(|(name, s)| {
                let f = |v: f64| if name == "log_loss" { format!("{v:.4}") } else { pct(v) };
                vec![name.clone(), f(s.mean), f(s.std), f(s.min), f(s.max)]
            })
            .collect();
        out.push(Block::Table(vec!["metric".into(), "mean".into(), "std".into(), "min".into(), "max".into()], rows));
        let rows = file
            .runs
            .iter()
            .map(|r| vec![r.path.clone(), r.n.to_string(), pct(r.accuracy), pct(r.uar), pct(r.macro_f1)])
            .collect();
        out.push(Block::Table(
            vec!["predictions".into(), "clips".into(), "accuracy".into(), "UAR".into(), "macro F1".into()],
            rows,
        ));
    }

    out.push(Block::Heading("Per class".into()));
    let rows = m
        .per_class
        .iter()
        .map(|c| {
            vec![
                c.label.clone(),
                format!("{:.3}", c.precision),
                format!("{:.3}", c.recall),
                format!("{:.3}", c.f1),
                c.support.to_string(),
                c.predicted.to_string(),
            ]
        })
        .collect();
    out.push(Block::Table(
        ["class", "precision", "recall", "F1", "support", "predicted"].iter().map(|s| s.to_string()).collect(),
        rows,
    ));

    out.push(Block::Heading("Most frequent confusions".into()));
    let confusions = m.top_confusions(config.top_confusions);
    if confusions.is_empty() {
        out.push(Block::Paragraph("None: every clip was classified correctly.".into()));
    } else {
        let support = |label: &str| m.per_class.iter().find(|c| c.label == label).map_or(0, |c| c.support);
        out.push(Block::List(
            confusions
                .iter()
                .map(|(t, p, n)| format!("{t} -> {p}: {n} ({} of the {t} clips)", pct(*n as f64 / support(t) as f64)))
                .collect(),
        ));
    }
    out.extend(pictures);

    out.push(Block::Heading("Provenance".into()));
    let mut items = Vec::new();
    for p in &file.provenance.predictions {
        let mut item = format!("predictions `{}` (sha256 {})", p.path, &p.sha256[..16.min(p.sha256.len())]);
        for key in ["ser.checkpoint", "ser.part", "ser.fold", "ser.protocol", "ser.features_sha256"] {
            if let Some(v) = p.metadata.get(key) {
                let _ = write!(item, ", {}: {}", key.trim_start_matches("ser."), v);
            }
        }
        if p.rows_without_label > 0 {
            let _ = write!(item, ", {} rows without a label left out", p.rows_without_label);
        }
        items.push(item);
    }
    if let Some(model) = &file.provenance.model_json {
        let get = |key: &str| model.get(key).map(|v| v.to_string().trim_matches('"').to_string());
        let mut item = String::from("model:");
        for key in ["protocol", "seed", "best_epoch", "epochs_run", "device", "features_config_hash"] {
            if let Some(v) = get(key) {
                let _ = write!(item, " {key} {v};");
            }
        }
        items.push(item);
        if let Some(config) = model.get("model_config") {
            items.push(format!("model config: {config}"));
        }
        if let Some(config) = model.get("features_config") {
            items.push(format!("feature config: {config}"));
        }
        if let Some(versions) = model.get("versions") {
            items.push(format!("versions: {versions}"));
        }
    }
    items.push(format!(
        "{}; bootstrap seed {}, {} resamples",
        file.provenance.writer, config.seed, config.bootstrap_resamples
    ));
    out.push(Block::List(items));
    out
}

/// `summary.json`: a pipeline's headline figures in one small flat file, for dashboards and
/// for comparing pipelines at a glance.
pub fn summary(file: &MetricsFile, pipeline: &str) -> serde_json::Value {
    let m = &file.metrics;
    let model = file.provenance.model_json.as_ref();
    let get = |key: &str| model.and_then(|v| v.get(key)).cloned().unwrap_or(serde_json::Value::Null);
    let mut out = serde_json::json!({
        "pipeline": pipeline,
        "n": m.n,
        "accuracy": m.accuracy,
        "uar": m.uar,
        "macro_f1": m.macro_f1,
        "weighted_f1": m.weighted_f1,
        "log_loss": m.log_loss,
        "accuracy_ci": m.bootstrap.as_ref().map(|b| [b.accuracy.low, b.accuracy.high]),
        "macro_f1_ci": m.bootstrap.as_ref().map(|b| [b.macro_f1.low, b.macro_f1.high]),
        "classes_evaluated": m.classes_evaluated,
        "predictions": file.provenance.predictions.iter().map(|p| serde_json::json!({"path": p.path, "sha256": p.sha256})).collect::<Vec<_>>(),
        "model": {
            "protocol": get("protocol"),
            "seed": get("seed"),
            "best_epoch": get("best_epoch"),
            "features_config_hash": get("features_config_hash"),
            "data": get("data"),
        },
        "writer": file.provenance.writer,
    });
    if let Some(across) = &file.across_runs {
        out["across_runs"] = serde_json::to_value(across).expect("serialises");
    }
    out
}

/// Reads the inputs, writes every output into `out_dir`, and returns what it wrote.
pub fn run_eval(inputs: &EvalInputs, config: &EvalConfig, out_dir: &Path) -> Result<EvalOutcome> {
    let mut tables = Vec::new();
    let mut hashes = Vec::new();
    for path in &inputs.predictions {
        tables.push(read_predictions(path, &config.classes)?);
        hashes.push(sha256_file(path)?);
        tracing::info!("{}: {} clips", path.display(), tables.last().map_or(0, |t| t.len()));
    }
    let model_json = inputs.model_json.as_deref().map(read_json).transpose()?;
    let histories: Vec<History> = inputs.histories.iter().map(|p| read_history(p)).collect::<Result<_>>()?;
    let only = match &config.classes {
        ClassSet::Only(list) => Some(&list[..]),
        _ => None,
    };
    let (tables, shared) = match config.classes.restricts() {
        false => (tables, None),
        true => {
            let (tables, shared) = restrict_classes(tables, only)?;
            tracing::info!("scored on the classes {:?}; left out {:?}", shared.kept, shared.dropped_labels);
            (tables, Some(shared))
        }
    };
    let mut file = metrics_file(&tables, &hashes, config, model_json, &inputs.histories)?;
    file.shared_classes = shared;
    let m = &file.metrics;

    let mut written = Vec::new();
    let mut write = |name: &str, bytes: &[u8]| -> Result<()> {
        let path = out_dir.join(name);
        write_atomic(&path, bytes)?;
        written.push(path);
        Ok(())
    };
    write("confusion.csv", confusion_csv(m).as_bytes())?;

    let mut pictures = Vec::new();
    let pictures_skipped = match ensure_font() {
        Err(why) => {
            tracing::warn!("pictures skipped: {why}");
            Some(why)
        }
        Ok(_) => {
            let title = |what: &str| format!("{what} ({} clips, accuracy {})", m.n, pct(m.accuracy));
            let mut drawn = vec![
                (
                    Some("Confusion matrix"),
                    "confusion_counts",
                    "confusion matrix, counts",
                    confusion_picture(
                        &out_dir.join("confusion_counts.png"),
                        m,
                        false,
                        &title("Confusion matrix, counts"),
                    )?,
                ),
                (
                    None,
                    "confusion_normalised",
                    "confusion matrix, share of each true class",
                    confusion_picture(
                        &out_dir.join("confusion_normalised.png"),
                        m,
                        true,
                        &title("Confusion matrix, share of each true class"),
                    )?,
                ),
            ];
            if !histories.is_empty() {
                let picture = curves_picture(&out_dir.join("curves.png"), &histories)?;
                let alt = match histories.len() {
                    1 => "training curves: loss and accuracy per epoch",
                    _ => "training curves: loss and accuracy per epoch, one line per trained run",
                };
                drawn.push((Some("Training curves"), "curves", alt, picture));
            }
            for (heading, stem, alt, picture) in drawn {
                write(&format!("{stem}.png"), &picture.png)?;
                write(&format!("{stem}.svg"), picture.svg.as_bytes())?;
                if let Some(heading) = heading {
                    pictures.push(Block::Heading(heading.into()));
                }
                pictures.push(Block::Image { alt: alt.into(), file: format!("{stem}.png"), png: picture.png });
            }
            None
        }
    };
    let doc = blocks(&file, pictures, config);
    write("report.md", markdown(&inputs.title, &doc).as_bytes())?;
    write("report.html", html(&inputs.title, &doc).as_bytes())?;
    // metrics.json last: its presence means the evaluation finished.
    let metrics_path = out_dir.join("metrics.json");
    write_json(&metrics_path, &file)?;
    written.push(metrics_path);
    Ok(EvalOutcome { metrics: file, files: written, pictures_skipped })
}
