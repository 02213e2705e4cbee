//! The robustness table: one evaluation of the clean test part and one per channel change
//! (`make robustness`), side by side. Each row is read from a `metrics.json` (ours or any with
//! the headline keys and a confusion matrix), so it is a function of values.

use std::fmt::Write as _;

use crate::Error::Invalid;

/// One condition's figures.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ConditionRow {
    pub condition: String,
    pub clips: u64,
    pub uar: f64,
    pub accuracy: f64,
    pub macro_f1: f64,
    /// UAR's mean and standard deviation over the runs (folds or seeds), when there were several.
    pub uar_runs: Option<(f64, f64)>,
    /// UAR minus the clean condition's.
    pub uar_change: f64,
    /// The class given most often and its share of all answers: a model that collapses onto
    /// one class under a channel shows it here first.
    pub top_answer: (String, f64),
}

fn number(value: &serde_json::Value, key: &str, what: &str) -> crate::Result<f64> {
    value.get(key).and_then(|v| v.as_f64()).ok_or_else(|| Invalid(format!("{what}: no `{key}`")))
}

/// The row of one condition's `metrics.json`; `what` names it in errors.
fn row(condition: &str, metrics: &serde_json::Value, what: &str) -> crate::Result<ConditionRow> {
    let labels: Vec<String> = metrics
        .get("labels")
        .and_then(|v| v.as_array())
        .map(|a| a.iter().filter_map(|l| l.as_str().map(String::from)).collect())
        .ok_or_else(|| Invalid(format!("{what}: no `labels`")))?;
    let counts: Vec<Vec<u64>> = metrics
        .pointer("/confusion/counts")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .ok_or_else(|| Invalid(format!("{what}: no `confusion.counts`")))?;
    if counts.len() != labels.len() || counts.iter().any(|r| r.len() != labels.len()) {
        return Err(Invalid(format!("{what}: the confusion matrix is not {0} x {0}, as its labels", labels.len())));
    }
    let answers: Vec<u64> = (0..labels.len()).map(|p| counts.iter().map(|r| r[p]).sum()).collect();
    let clips: u64 = answers.iter().sum();
    let (top, &top_count) =
        answers.iter().enumerate().max_by_key(|(i, c)| (**c, std::cmp::Reverse(*i))).expect("labels");
    let uar_runs = metrics
        .pointer("/across_runs/uar")
        .and_then(|u| Some((u.get("mean")?.as_f64()?, u.get("std")?.as_f64()?)))
        .filter(|_| metrics.get("runs").and_then(|r| r.as_array()).is_some_and(|r| r.len() > 1));
    Ok(ConditionRow {
        condition: condition.to_string(),
        clips,
        uar: number(metrics, "uar", what)?,
        accuracy: number(metrics, "accuracy", what)?,
        macro_f1: number(metrics, "macro_f1", what)?,
        uar_runs,
        uar_change: 0.0,
        top_answer: (labels[top].clone(), top_count as f64 / clips.max(1) as f64),
    })
}

/// The table: `clean` first, then each `(condition, metrics.json)` in the order given, with each
/// UAR's change from the clean one. `what` of each names its file in errors.
pub fn table(
    clean: (&serde_json::Value, &str),
    conditions: &[(String, serde_json::Value, String)],
) -> crate::Result<Vec<ConditionRow>> {
    let base = row("clean", clean.0, clean.1)?;
    let mut rows = vec![base.clone()];
    for (name, metrics, what) in conditions {
        let mut r = row(name, metrics, what)?;
        if r.clips != base.clips {
            return Err(Invalid(format!(
                "{what}: {} clips, but the clean evaluation has {}; score the same test part",
                r.clips, base.clips
            )));
        }
        r.uar_change = r.uar - base.uar;
        rows.push(r);
    }
    Ok(rows)
}

/// What a recipe is chosen by under the suite: the mean UAR over every condition, clean
/// included, each weighing the same; the worst condition; the largest share one answer took
/// under any condition (a collapse onto one class).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Summary {
    pub conditions: usize,
    pub mean_uar: f64,
    /// The condition with the lowest UAR.
    pub worst_condition: String,
    pub worst_uar: f64,
    /// Where one class took the largest share of the answers: the condition, the class, its share.
    pub largest_share_condition: String,
    pub largest_share_class: String,
    pub largest_share: f64,
}

/// The summary of a [`table`]'s rows (clean first); `None` for no rows.
pub fn summary(rows: &[ConditionRow]) -> Option<Summary> {
    let worst = rows.iter().min_by(|a, b| a.uar.total_cmp(&b.uar))?;
    let share = rows.iter().max_by(|a, b| a.top_answer.1.total_cmp(&b.top_answer.1))?;
    Some(Summary {
        conditions: rows.len(),
        mean_uar: rows.iter().map(|r| r.uar).sum::<f64>() / rows.len() as f64,
        worst_condition: worst.condition.clone(),
        worst_uar: worst.uar,
        largest_share_condition: share.condition.clone(),
        largest_share_class: share.top_answer.0.clone(),
        largest_share: share.top_answer.1,
    })
}

/// The table as Markdown, percentages to one decimal, and the [`summary`] under it.
pub fn markdown(rows: &[ConditionRow]) -> String {
    let pct = |v: f64| format!("{:.1}", v * 100.0);
    let mut out = String::from(
        "| condition | UAR % | UAR % over runs (mean +- sd) | change from clean | accuracy % | macro F1 % | most given answer |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let runs = r.uar_runs.map_or("-".to_string(), |(m, s)| format!("{} +- {}", pct(m), pct(s)));
        let change = if r.condition == "clean" { "-".to_string() } else { format!("{:+.1}", r.uar_change * 100.0) };
        let _ = writeln!(
            out,
            "| {} | {} | {runs} | {change} | {} | {} | {} ({}%) |",
            r.condition,
            pct(r.uar),
            pct(r.accuracy),
            pct(r.macro_f1),
            r.top_answer.0,
            pct(r.top_answer.1)
        );
    }
    if let Some(sum) = summary(rows) {
        let _ = write!(
            out,
            "\nMean UAR over the {} conditions (clean included): {}%. Worst: {} ({}%). Largest share of one \
             answer: {} under {} ({}%).\n",
            sum.conditions,
            pct(sum.mean_uar),
            sum.worst_condition,
            pct(sum.worst_uar),
            sum.largest_share_class,
            sum.largest_share_condition,
            pct(sum.largest_share)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(uar: f64, counts: serde_json::Value) -> serde_json::Value {
        serde_json::json!({
            "labels": ["angry", "happy", "sad"], "uar": uar, "accuracy": uar, "macro_f1": uar,
            "confusion": {"counts": counts},
            "runs": [{}, {}], "across_runs": {"uar": {"mean": uar, "std": 0.05}},
        })
    }

    #[test]
    fn rows_give_the_change_from_clean_and_the_collapse() {
        let clean = metrics(0.6, serde_json::json!([[8, 1, 1], [1, 8, 1], [1, 1, 8]]));
        // Under noise most answers are `sad`.
        let noisy = metrics(0.4, serde_json::json!([[2, 0, 8], [0, 4, 6], [0, 0, 10]]));
        let rows = table((&clean, "clean.json"), &[("noise_5db".into(), noisy, "noisy.json".into())]).unwrap();
        assert_eq!(rows[0].condition, "clean");
        assert_eq!(rows[0].clips, 30);
        assert!((rows[1].uar_change + 0.2).abs() < 1e-12);
        assert_eq!(rows[1].top_answer.0, "sad");
        assert!((rows[1].top_answer.1 - 24.0 / 30.0).abs() < 1e-12);
        assert_eq!(rows[1].uar_runs, Some((0.4, 0.05)));
        let md = markdown(&rows);
        assert!(md.contains("| noise_5db | 40.0 | 40.0 +- 5.0 | -20.0 | 40.0 | 40.0 | sad (80.0%) |"), "{md}");
        let sum = summary(&rows).unwrap();
        assert_eq!((sum.conditions, sum.worst_condition.as_str()), (2, "noise_5db"));
        assert!((sum.mean_uar - 0.5).abs() < 1e-12);
        assert_eq!((sum.largest_share_condition.as_str(), sum.largest_share_class.as_str()), ("noise_5db", "sad"));
        assert!(
            md.contains("Mean UAR over the 2 conditions (clean included): 50.0%. Worst: noise_5db (40.0%). Largest share of one answer: sad under noise_5db (80.0%)."),
            "{md}"
        );
        assert!(summary(&[]).is_none());
    }

    #[test]
    fn another_test_part_or_a_foreign_file_is_refused() {
        let clean = metrics(0.6, serde_json::json!([[8, 1, 1], [1, 8, 1], [1, 1, 8]]));
        let smaller = metrics(0.6, serde_json::json!([[1, 0, 0], [0, 1, 0], [0, 0, 1]]));
        let err = table((&clean, "c"), &[("gain_-20db".into(), smaller, "g.json".into())]).unwrap_err().to_string();
        assert!(err.contains("g.json: 3 clips") && err.contains("30"), "{err}");
        let err = table((&serde_json::json!({"uar": 0.5}), "x.json"), &[]).unwrap_err().to_string();
        assert!(err.contains("x.json: no `labels`"), "{err}");
    }
}
