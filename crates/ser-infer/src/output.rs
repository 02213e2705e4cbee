//! What predict, timeline and stream print: aligned columns for people, CSV, or one JSON object
//! per line. The JSON of a recording and of a window is also what the HTTP service answers.

use std::collections::BTreeMap;
use std::io::Write;

use serde::Serialize;

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

/// A recording's answer, the JSON every interface gives (each file's `predict` line, the Python
/// package's dict, the service's `/v1/predict`): the prediction's fields (null when every window
/// is silent), `silent`, the windows heard, and the span covered.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RecordingAnswer {
    /// The most probable class; null when every window is silent.
    pub label: Option<String>,
    /// The probability of `label`.
    pub confidence: Option<f64>,
    /// Each class's probability (the mean over the loud windows).
    pub probabilities: Option<BTreeMap<String, f64>>,
    pub silent: bool,
    pub windows: usize,
    pub silent_windows: usize,
    pub start_s: f64,
    pub end_s: f64,
}

/// One window's answer, as `timeline`, `stream`, `/v1/timeline` and `/v1/stream` give it; a
/// silent window has a null `label` and no `confidence` or `probabilities`.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SegmentAnswer {
    pub start_s: f64,
    pub end_s: f64,
    /// RMS level of the window in dB full scale.
    pub level_dbfs: f64,
    pub silent: bool,
    pub label: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probabilities: Option<BTreeMap<String, f64>>,
}

fn probability_map(p: &Prediction, labels: &[String]) -> BTreeMap<String, f64> {
    labels.iter().zip(&p.probabilities).map(|(l, v)| (l.clone(), *v as f64)).collect()
}

impl RecordingAnswer {
    pub fn of(r: &Recording, labels: &[String]) -> RecordingAnswer {
        let p = r.prediction.as_ref();
        RecordingAnswer {
            label: p.map(|p| p.label.clone()),
            confidence: p.map(|p| p.confidence as f64),
            probabilities: p.map(|p| probability_map(p, labels)),
            silent: p.is_none(),
            windows: r.windows,
            silent_windows: r.silent_windows,
            start_s: r.start_s,
            end_s: r.end_s,
        }
    }
}

impl SegmentAnswer {
    pub fn of(s: &Segment, labels: &[String]) -> SegmentAnswer {
        let p = s.prediction.as_ref();
        SegmentAnswer {
            start_s: s.start_s,
            end_s: s.end_s,
            level_dbfs: s.level_dbfs,
            silent: p.is_none(),
            label: p.map(|p| p.label.clone()),
            confidence: p.map(|p| p.confidence as f64),
            probabilities: p.map(|p| probability_map(p, labels)),
        }
    }
}

/// A recording's answer as JSON ([`RecordingAnswer`]).
pub fn recording_json(r: &Recording, labels: &[String]) -> serde_json::Value {
    serde_json::to_value(RecordingAnswer::of(r, labels)).expect("an answer serialises")
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

/// A window as JSON ([`SegmentAnswer`]).
pub fn segment_json(segment: &Segment, labels: &[String]) -> serde_json::Value {
    serde_json::to_value(SegmentAnswer::of(segment, labels)).expect("an answer serialises")
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
