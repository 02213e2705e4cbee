//! What predict, timeline and stream print: aligned columns for people, CSV, or one JSON object
//! per line. The JSON of a window is also what the HTTP service answers.

use std::io::Write;

use crate::config::Format;
use crate::{Prediction, Segment};

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
        Format::Csv => writeln!(out, "path,label,confidence,{}", probability_columns(labels)),
        Format::Table => writeln!(out, "{:<50} {:<10} {:>10}", "path", "label", "confidence"),
        Format::Jsonl => Ok(()),
    }
}

/// One file's row of `predict`: its emotion, or (in JSON lines only) its error.
pub fn prediction_row(
    out: &mut impl Write,
    format: Format,
    path: &str,
    labels: &[String],
    result: Result<&Prediction, &str>,
) -> std::io::Result<()> {
    match (result, format) {
        (Ok(p), Format::Table) => writeln!(out, "{path:<50} {:<10} {:>10.3}", p.label, p.confidence),
        (Ok(p), Format::Csv) => {
            writeln!(out, "{},{},{:.6},{}", csv_field(path), p.label, p.confidence, probabilities_csv(p))
        }
        (Ok(p), Format::Jsonl) => {
            let mut line = p.to_json(labels);
            line["path"] = path.into();
            writeln!(out, "{line}")
        }
        (Err(e), Format::Jsonl) => writeln!(out, "{}", serde_json::json!({"path": path, "error": e})),
        (Err(_), _) => Ok(()),
    }
}

/// A window as JSON: `start_s`, `end_s`, `level_dbfs`, then the prediction's fields or
/// `"silent": true`.
pub fn segment_json(segment: &Segment, labels: &[String]) -> serde_json::Value {
    let mut v =
        serde_json::json!({"start_s": segment.start_s, "end_s": segment.end_s, "level_dbfs": segment.level_dbfs});
    match &segment.prediction {
        Some(p) => {
            for (key, value) in p.to_json(labels).as_object().expect("an object") {
                v[key] = value.clone();
            }
        }
        None => v["silent"] = true.into(),
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
