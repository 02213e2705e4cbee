//! Metrics equal scikit-learn's on committed fixtures (tests/data/make_golden.py).

use ser_eval::io::read_json;
use ser_eval::{evaluate, read_predictions};

use crate::{config, data};

const TOLERANCE: f64 = 1e-9;

#[track_caller]
fn close(got: f64, expected: &serde_json::Value, what: &str) {
    let expected = expected.as_f64().unwrap_or_else(|| panic!("{what}: not a number in the fixture"));
    assert!(got.is_finite(), "{what}: {got} is not finite");
    assert!((got - expected).abs() <= TOLERANCE, "{what}: got {got}, scikit-learn {expected}");
}

#[track_caller]
fn check(case: &str) {
    let table = read_predictions(&data(&format!("{case}.parquet")), &ser_eval::ClassSet::All).unwrap();
    let expected = read_json(&data(&format!("{case}.json"))).unwrap();
    let m = evaluate(&table.classes, &table.truth, &table.predicted, table.probabilities.as_deref(), &config());
    assert_eq!(m.n as u64, expected["n"].as_u64().unwrap());
    for (name, value) in m.headline() {
        if name == "macro_recall" {
            close(value, &expected["uar"], "macro_recall = uar");
            continue;
        }
        if name == "log_loss" {
            // sklearn works on the float32 probabilities cast to float64, as we do.
            let want = expected["log_loss"].as_f64().unwrap();
            assert!((value - want).abs() < 1e-6, "log_loss: got {value}, scikit-learn {want}");
            continue;
        }
        close(value, &expected[name], name);
    }
    assert_eq!(m.log_loss.is_some(), expected.get("log_loss").is_some());
    for (c, class) in m.per_class.iter().enumerate() {
        close(class.precision, &expected["precision"][c], &format!("precision {}", class.label));
        close(class.recall, &expected["recall"][c], &format!("recall {}", class.label));
        close(class.f1, &expected["f1"][c], &format!("f1 {}", class.label));
        assert_eq!(class.support, expected["support"][c].as_u64().unwrap());
    }
    let confusion: Vec<Vec<u64>> = serde_json::from_value(expected["confusion"].clone()).unwrap();
    assert_eq!(m.confusion.counts, confusion);
    let total: u64 = m.confusion.counts.iter().flatten().sum();
    assert_eq!(total as usize, m.n, "the confusion matrix sums to n");
    let b = m.bootstrap.as_ref().unwrap();
    assert!(b.accuracy.low <= m.accuracy && m.accuracy <= b.accuracy.high, "{b:?}");
    assert!(b.macro_f1.low <= b.macro_f1.high);
}

#[test]
fn balanced_matches_sklearn() {
    check("balanced");
}

#[test]
fn zero_support_and_zero_predictions_match_sklearn() {
    check("sparse");
    let table = read_predictions(&data("sparse.parquet"), &ser_eval::ClassSet::All).unwrap();
    let m = evaluate(&table.classes, &table.truth, &table.predicted, None, &config());
    assert_eq!(m.classes_evaluated, ["angry", "fearful", "happy", "neutral", "sad"]);
    let calm = &m.per_class[1];
    assert_eq!((calm.support, calm.f1, calm.precision), (0, 0.0, 0.0));
    assert!(calm.predicted > 0, "the fixture predicts calm, which is never true");
}

#[test]
fn perfect_predictions() {
    check("perfect");
    let table = read_predictions(&data("perfect.parquet"), &ser_eval::ClassSet::All).unwrap();
    let m = evaluate(&table.classes, &table.truth, &table.predicted, None, &config());
    assert_eq!((m.accuracy, m.macro_f1), (1.0, 1.0));
    let b = m.bootstrap.clone().unwrap();
    assert_eq!((b.accuracy.low, b.accuracy.high), (1.0, 1.0));
    assert!(m.top_confusions(5).is_empty());
}

#[test]
fn unlabelled_rows_are_left_out_and_no_probabilities_is_fine() {
    check("nolabels_some");
    let table = read_predictions(&data("nolabels_some.parquet"), &ser_eval::ClassSet::All).unwrap();
    assert_eq!((table.len(), table.n_unlabelled), (37, 3));
    assert!(table.probabilities.is_none());
}

#[test]
fn bootstrap_is_seeded() {
    let table = read_predictions(&data("balanced.parquet"), &ser_eval::ClassSet::All).unwrap();
    let run = |seed| {
        let config = ser_eval::EvalConfig { seed, ..config() };
        evaluate(&table.classes, &table.truth, &table.predicted, None, &config).bootstrap.unwrap()
    };
    assert_eq!(run(1), run(1));
    assert_ne!(run(1), run(2));
    let b = run(1);
    // 200 clips at ~65% accuracy: a 95% interval is about +-6.6 points wide.
    let width = b.accuracy.high - b.accuracy.low;
    assert!((0.08..0.2).contains(&width), "{b:?}");
}

#[test]
fn top_confusions_name_the_biggest_cells_first() {
    let labels: Vec<String> = ser_eval::DEFAULT_LABELS.iter().map(|s| s.to_string()).collect();
    // happy (4) -> fearful (3) seven times, sad (6) -> neutral (5) twice.
    let mut truth = vec![4; 10];
    let mut predicted = vec![3; 7];
    predicted.extend([4, 4, 4]);
    truth.extend([6, 6, 6]);
    predicted.extend([5, 5, 6]);
    let m = evaluate(&labels, &truth, &predicted, None, &config());
    assert_eq!(m.top_confusions(10), vec![("happy", "fearful", 7), ("sad", "neutral", 2)]);
}
