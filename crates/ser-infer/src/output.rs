//! What predict, timeline and stream print: aligned columns for people, CSV, or one JSON object
//! per line. The JSON of a recording and of a window is also what the HTTP service answers.

use std::io::Write;

use crate::config::Format;
use crate::{Prediction, Recording, Segment};

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n']) { format!("\"{}\"", text.replace('"', "\"\"")) } else { text.to_string() }
}

fn probability_columns(labels: &[String]) -> String {
    labels.iter().map(|l| format!("p_{l}")).collect::<Vec<_>>().join(",")
}

fn probabilities_csv(p: &Prediction) -> String {
    p.probabilities.iter().map(|v| format!("{v:.6}")).collect::<Vec<_>>().join(",")
}

/// The header `predict` prints before its rows (none for JSON lines).
pub fn prediction_header(out: &mut impl Write, format: Format, labels: &[String]) -> std::io::Result<()> {
    match format {
        Format::Csv => {
            writeln!(out, "path,label,confidence,windows,silent_windows,start_s,end_s,{}", probability_columns(labels))
        }
        Format::Table => writeln!(out, "{:<50} {:<10} {:>10} {:>8}", "path", "label", "confidence", "windows"),
        Format::Jsonl => Ok(()),
    }
}

/// A recording's answer as JSON: the prediction's fields (`label`, `confidence` and
/// `probabilities` null when it is silent), `silent`, `windows`, `silent_windows`, and the span
/// covered (`start_s`, `end_s`).
pub fn recording_json(r: &Recording, labels: &[String]) -> serde_json::Value {
    let mut v = match &r.prediction {
        Some(p) => p.to_json(labels),
        None => serde_json::json!({"label": null, "confidence": null, "probabilities": null}),
    };
    v["silent"] = r.prediction.is_none().into();
    v["windows"] = r.windows.into();
    v["silent_windows"] = r.silent_windows.into();
    v["start_s"] = r.start_s.into();
    v["end_s"] = r.end_s.into();
    v
}

/// One file's row of `predict`: its answer, or (in JSON lines only) its error.
pub fn prediction_row(
    out: &mut impl Write,
    format: Format,
    path: &str,
    labels: &[String],
    result: Result<&Recording, &str>,
) -> std::io::Result<()> {
    let r = match result {
        Ok(r) => r,
        Err(e) if format == Format::Jsonl => return writeln!(out, "{}", serde_json::json!({"path": path, "error": e})),
        Err(_) => return Ok(()),
    };
    match format {
        Format::Table => {
            let (label, confidence) = match &r.prediction {
                Some(p) => (p.label.as_str(), format!("{:.3}", p.confidence)),
                None => ("(silent)", "-".to_string()),
            };
            writeln!(out, "{path:<50} {label:<10} {confidence:>10} {:>8}", r.windows)
        }
        Format::Csv => {
            let (label, confidence, probs) = match &r.prediction {
                Some(p) => (p.label.clone(), format!("{:.6}", p.confidence), probabilities_csv(p)),
                None => (String::new(), String::new(), vec![""; labels.len()].join(",")),
            };
            writeln!(
                out,
                "{},{label},{confidence},{},{},{:.3},{:.3},{probs}",
                csv_field(path),
                r.windows,
                r.silent_windows,
                r.start_s,
                r.end_s
            )
        }
        Format::Jsonl => {
            let mut line = recording_json(r, labels);
            line["path"] = path.into();
            writeln!(out, "{line}")
        }
    }
}

/// A window as JSON: `start_s`, `end_s`, `level_dbfs`, `silent`, then the prediction's fields
/// (`label` null for a silent window).
pub fn segment_json(segment: &Segment, labels: &[String]) -> serde_json::Value {
    let mut v = serde_json::json!({
        "start_s": segment.start_s,
        "end_s": segment.end_s,
        "level_dbfs": segment.level_dbfs,
        "silent": segment.prediction.is_none(),
    });
    match &segment.prediction {
        Some(p) => {
            for (key, value) in p.to_json(labels).as_object().expect("an object") {
                v[key] = value.clone();
            }
        }
        None => v["label"] = serde_json::Value::Null,
    }
    v
}

/// The header `timeline` prints before its rows (none for JSON lines).
pub fn segment_header(out: &mut impl Write, format: Format, labels: &[String]) -> std::io::Result<()> {
    match format {
        Format::Table => {
            writeln!(out, "{:<30} {:>8} {:>8} {:<10} {:>10}", "path", "start_s", "end_s", "label", "confidence")
        }
        Format::Csv => writeln!(out, "path,start_s,end_s,level_dbfs,label,confidence,{}", probability_columns(labels)),
        Format::Jsonl => Ok(()),
    }
}

/// One window's row of `timeline` and `stream`.
pub fn segment_row(
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
                Some(p) => (p.label.clone(), format!("{:.6}", p.confidence), probabilities_csv(p)),
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
            let mut line = segment_json(s, labels);
            line["path"] = path.into();
            writeln!(out, "{line}")
        }
    }
}
