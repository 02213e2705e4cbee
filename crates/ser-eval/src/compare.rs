//! Two evaluations side by side: a diff table of their `metrics.json` files. Works on any
//! `metrics.json` with the headline keys, ours or not.

use std::fmt::Write as _;

const HEADLINE: [&str; 5] = ["accuracy", "uar", "macro_f1", "weighted_f1", "log_loss"];

#[derive(Debug, Clone, PartialEq)]
pub struct DiffRow {
    pub metric: String,
    pub a: Option<f64>,
    pub b: Option<f64>,
}

impl DiffRow {
    pub fn delta(&self) -> Option<f64> {
        Some(self.b? - self.a?)
    }
}

fn per_class_f1(value: &serde_json::Value) -> Vec<(String, f64)> {
    value
        .get("per_class")
        .and_then(|v| v.as_array())
        .map(|rows| {
            rows.iter().filter_map(|r| Some((r.get("label")?.as_str()?.to_string(), r.get("f1")?.as_f64()?))).collect()
        })
        .unwrap_or_default()
}

/// Headline metrics, then each class's F1 (`f1:<class>`), for the union of both files' keys.
pub fn diff(a: &serde_json::Value, b: &serde_json::Value) -> Vec<DiffRow> {
    let mut rows: Vec<DiffRow> = HEADLINE
        .iter()
        .map(|key| DiffRow {
            metric: key.to_string(),
            a: a.get(*key).and_then(|v| v.as_f64()),
            b: b.get(*key).and_then(|v| v.as_f64()),
        })
        .filter(|r| r.a.is_some() || r.b.is_some())
        .collect();
    let (fa, fb) = (per_class_f1(a), per_class_f1(b));
    let mut classes: Vec<&String> = fa.iter().map(|(l, _)| l).collect();
    for (l, _) in &fb {
        if !classes.contains(&l) {
            classes.push(l);
        }
    }
    for class in classes {
        let find = |v: &[(String, f64)]| v.iter().find(|(l, _)| l == class).map(|(_, f)| *f);
        rows.push(DiffRow { metric: format!("f1:{class}"), a: find(&fa), b: find(&fb) });
    }
    rows
}

/// The diff as a Markdown table.
pub fn diff_markdown(name_a: &str, name_b: &str, rows: &[DiffRow]) -> String {
    let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.4}"));
    let mut out = format!("| metric | {name_a} | {name_b} | difference (b - a) |\n|---|---|---|---|\n");
    for row in rows {
        let delta = row.delta().map_or("-".to_string(), |d| format!("{d:+.4}"));
        let _ = writeln!(out, "| {} | {} | {} | {} |", row.metric, f(row.a), f(row.b), delta);
    }
    out
}
