//! The binary end to end: reports, pictures, several runs, comparison.

use std::path::Path;
use std::process::Command;

use crate::data;

/// history.csv's header, as ser-model train writes it.
const HISTORY_HEADER: &str =
    "epoch,train_loss,train_accuracy,val_loss,val_accuracy,val_macro_f1,val_uar,learning_rate\n";

fn ser_eval(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ser-eval")).args(args).output().unwrap()
}

fn eval_yaml(dir: &Path) -> String {
    let path = dir.join("eval.yaml");
    std::fs::write(&path, "bootstrap_resamples: 200\nconfidence: 0.95\nseed: 3\ntop_confusions: 5\n").unwrap();
    path.display().to_string()
}

#[track_caller]
fn png_size(path: &Path) -> (u32, u32) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    // Not a blank canvas: some pixels are dark (text, filled cells).
    assert!(buf.iter().any(|&b| b < 60), "{} is blank", path.display());
    (info.width, info.height)
}

#[test]
fn report_with_checkpoint_files() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = dir.path().join("model");
    std::fs::create_dir(&checkpoint).unwrap();
    std::fs::write(
        checkpoint.join("history.csv"),
        format!(
            "{HISTORY_HEADER}1,2.0,0.2,2.1,0.18,0.1,0.18,0.001\n2,1.5,0.4,1.8,0.3,0.25,0.3,0.001\n\
             3,1.1,0.6,1.7,0.35,0.3,0.35,0.0005\n"
        ),
    )
    .unwrap();
    std::fs::write(
        checkpoint.join("model.json"),
        r#"{"seed": 42, "protocol": "early stopping on val", "best_epoch": 3}"#,
    )
    .unwrap();
    let out = dir.path().join("eval");
    let config = eval_yaml(dir.path());
    let predictions = data("balanced.parquet");
    let output = ser_eval(&[
        "report",
        "--config",
        &config,
        "--predictions",
        predictions.to_str().unwrap(),
        "--checkpoint",
        checkpoint.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--summary",
        dir.path().join("summary.json").to_str().unwrap(),
        "--pipeline",
        "fixture",
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("200 clips: accuracy"), "{stdout}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["pipeline"], "fixture");
    assert_eq!(summary["model"]["seed"], 42);
    assert_eq!(summary["n"], 200);

    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    for key in ["accuracy", "uar", "macro_f1", "weighted_f1", "log_loss"] {
        let v = metrics[key].as_f64().unwrap();
        assert!((0.0..=3.0).contains(&v), "{key} = {v}");
    }
    assert!(metrics["accuracy"].as_f64().unwrap() <= 1.0, "fractions, not percent");
    assert_eq!(metrics["provenance"]["model_json"]["seed"], 42);
    let histories = metrics["provenance"]["histories"].as_array().unwrap();
    assert!(histories.len() == 1 && histories[0].as_str().unwrap().ends_with("model/history.csv"), "{histories:?}");
    assert_eq!(metrics["per_class"].as_array().unwrap().len(), 8);
    assert_eq!(metrics["bootstrap"]["resamples"], 200);

    let csv = std::fs::read_to_string(out.join("confusion.csv")).unwrap();
    assert_eq!(csv.lines().count(), 9);
    assert!(csv.starts_with("true\\predicted,angry,calm,"), "{csv}");

    assert_eq!(png_size(&out.join("confusion_counts.png")), ser_eval::plot::confusion_size(8));
    assert_eq!(png_size(&out.join("confusion_normalised.png")), ser_eval::plot::confusion_size(8));
    assert_eq!(png_size(&out.join("curves.png")), (1000, 420));
    let svg = std::fs::read_to_string(out.join("confusion_counts.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("surprised"), "{}", &svg[..200.min(svg.len())]);

    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("## Most frequent confusions"), "{md}");
    assert!(md.contains("![training curves"), "{md}");
    assert!(md.contains("seed 42"), "{md}");
    let line = md.lines().find(|l| l.starts_with("- ") && l.contains(" -> ")).unwrap();
    assert!(line.contains(" of the "), "{line}");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert_eq!(html.matches("data:image/png;base64,").count(), 3);
}

#[test]
fn several_runs_give_spread_and_pooled_confusion() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("eval");
    let config = eval_yaml(dir.path());
    let (a, b) = (data("balanced.parquet"), data("perfect.parquet"));
    // Each run's training curves (two folds, or two ensemble members), one of them trained
    // without validation and for longer: both are drawn, on one epoch axis.
    let (first, second) = (dir.path().join("first.csv"), dir.path().join("second.csv"));
    std::fs::write(
        &first,
        format!("{HISTORY_HEADER}1,2.0,0.2,2.1,0.18,0.1,0.18,0.001\n2,1.5,0.4,1.8,0.3,0.25,0.3,0.001\n"),
    )
    .unwrap();
    std::fs::write(&second, format!("{HISTORY_HEADER}1,2.2,0.1,,,,,0.001\n2,1.9,0.3,,,,,0.001\n3,1.2,0.7,,,,,0.001\n"))
        .unwrap();
    let output = ser_eval(&[
        "report",
        "--config",
        &config,
        "--predictions",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--history",
        first.to_str().unwrap(),
        second.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(metrics["n"], 224);
    let histories = metrics["provenance"]["histories"].as_array().unwrap();
    assert_eq!(histories.len(), 2, "{histories:?}");
    assert_eq!(png_size(&out.join("curves.png")), (1000, 420));
    let svg = std::fs::read_to_string(out.join("curves.svg")).unwrap();
    assert!(svg.contains("loss, 2 runs") && svg.contains("accuracy, 2 runs"), "the captions count the runs");
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("one line per trained run"), "{md}");
    let runs = metrics["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[1]["accuracy"], 1.0);
    let spread = &metrics["across_runs"]["accuracy"];
    let (ra, rb) = (runs[0]["accuracy"].as_f64().unwrap(), 1.0);
    assert!((spread["mean"].as_f64().unwrap() - (ra + rb) / 2.0).abs() < 1e-12);
    assert!((spread["std"].as_f64().unwrap() - (rb - ra).abs() / 2f64.sqrt()).abs() < 1e-12);
    let pooled: u64 = metrics["confusion"]["counts"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r.as_array().unwrap())
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(pooled, 224);
    assert!(std::fs::read_to_string(out.join("report.md")).unwrap().contains("## Across 2 runs"));

    let other = dir.path().join("other");
    let output = ser_eval(&[
        "report",
        "--config",
        &config,
        "--predictions",
        b.to_str().unwrap(),
        "--out",
        other.to_str().unwrap(),
    ]);
    assert!(output.status.success());
    let output = ser_eval(&["compare", out.to_str().unwrap(), other.to_str().unwrap()]);
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(table.contains("| accuracy |") && table.contains("| f1:angry |"), "{table}");
}

#[test]
fn bad_inputs_fail_with_the_file_named() {
    let dir = tempfile::tempdir().unwrap();
    let config = eval_yaml(dir.path());
    let junk = dir.path().join("junk.parquet");
    std::fs::write(&junk, b"not parquet").unwrap();
    let out = dir.path().join("eval");
    let output = ser_eval(&[
        "report",
        "--config",
        &config,
        "--predictions",
        junk.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("junk.parquet"), "{stderr}");
    assert!(!out.join("metrics.json").exists());

    let bad_config = dir.path().join("bad.yaml");
    std::fs::write(&bad_config, "bootstrap_resamples: 10\nconfidence: 0.95\nseed: 1\ntop_confusions: 3\ncolour: red\n")
        .unwrap();
    let good = data("perfect.parquet");
    let output = ser_eval(&[
        "report",
        "--config",
        bad_config.to_str().unwrap(),
        "--predictions",
        good.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("bad.yaml") && stderr.contains("colour"), "{stderr}");

    // One broken history among several names that file; nothing is written.
    let (fine, broken) = (dir.path().join("fine.csv"), dir.path().join("broken.csv"));
    std::fs::write(&fine, format!("{HISTORY_HEADER}1,2.0,0.2,2.1,0.18,0.1,0.18,0.001\n")).unwrap();
    std::fs::write(&broken, format!("{HISTORY_HEADER}1,two,0.2,2.1,0.18,0.1,0.18,0.001\n")).unwrap();
    let output = ser_eval(&[
        "report",
        "--config",
        &config,
        "--predictions",
        good.to_str().unwrap(),
        "--history",
        fine.to_str().unwrap(),
        broken.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("broken.csv") && stderr.contains("train_loss `two`"), "{stderr}");
    assert!(!out.join("metrics.json").exists());
}

/// Another corpus's labels (4 of the model's 8 classes, and one it does not know) scored on the
/// classes both share: the argmax restricted to them, the rest left out and named.
#[test]
fn another_corpus_is_scored_on_the_shared_classes() {
    use std::sync::Arc;

    use arrow::array::{Float32Array, RecordBatch, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    let dir = tempfile::tempdir().unwrap();
    let classes = ["angry", "calm", "disgust", "fearful", "happy", "neutral", "sad", "surprised"];
    // Truth, and the model's probabilities: "fearful" wins overall (the collapse), but among the
    // shared classes each clip's own class is the most probable.
    let rows: [(&str, &str); 5] = [("a", "angry"), ("b", "happy"), ("c", "neutral"), ("d", "sad"), ("e", "boredom")];
    let mut fields = vec![
        Field::new("clip_id", DataType::Utf8, false),
        Field::new("label", DataType::Utf8, true),
        Field::new("predicted", DataType::Utf8, false),
    ];
    fields.extend(classes.iter().map(|c| Field::new(format!("p_{c}"), DataType::Float32, false)));
    let schema = Arc::new(Schema::new(fields));
    let mut columns: Vec<Arc<dyn arrow::array::Array>> = vec![
        Arc::new(rows.iter().map(|r| Some(r.0)).collect::<StringArray>()),
        Arc::new(rows.iter().map(|r| Some(r.1)).collect::<StringArray>()),
        Arc::new(rows.iter().map(|_| Some("fearful")).collect::<StringArray>()),
    ];
    for c in classes {
        columns.push(Arc::new(
            rows.iter()
                .map(|(_, truth)| {
                    if c == "fearful" {
                        0.6
                    } else if c == *truth {
                        0.2
                    } else {
                        0.2 / 7.0
                    }
                })
                .collect::<Float32Array>(),
        ));
    }
    let path = dir.path().join("other.parquet");
    let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
    let mut writer = parquet::arrow::ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), schema, None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();

    let config = dir.path().join("eval.yaml");
    std::fs::write(&config, "bootstrap_resamples: 0\nconfidence: 0.95\nseed: 3\ntop_confusions: 5\nclasses: shared\n")
        .unwrap();
    let out = dir.path().join("eval");
    let run = |config: &std::path::Path| {
        ser_eval(&[
            "report",
            "--config",
            config.to_str().unwrap(),
            "--predictions",
            path.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
    };
    let output = run(&config);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(metrics["n"], 4);
    assert_eq!(metrics["accuracy"], 1.0, "the argmax among the shared classes");
    assert_eq!(metrics["labels"], serde_json::json!(["angry", "happy", "neutral", "sad"]));
    assert_eq!(metrics["shared_classes"]["dropped_labels"], serde_json::json!({"boredom": 1}));
    assert_eq!(
        metrics["shared_classes"]["dropped_classes"],
        serde_json::json!(["calm", "disgust", "fearful", "surprised"])
    );
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("Scored on the 4 classes") && report.contains("boredom (1 clips)"), "{report}");

    // A list of classes: those scored; the clips of the others (here: neutral's) are left out.
    let four = dir.path().join("four.yaml");
    std::fs::write(&four, "bootstrap_resamples: 0\nclasses: [sad, angry, happy]\n").unwrap();
    let output = run(&four);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    assert_eq!((metrics["n"].as_u64(), metrics["accuracy"].as_f64()), (Some(3), Some(1.0)));
    assert_eq!(metrics["labels"], serde_json::json!(["angry", "happy", "sad"]), "in the model's class order");
    assert_eq!(metrics["shared_classes"]["dropped_labels"], serde_json::json!({"boredom": 1, "neutral": 1}));
    assert_eq!(metrics["provenance"]["eval_config"]["classes"], serde_json::json!(["sad", "angry", "happy"]));
    std::fs::write(&four, "classes: [angry, irate]\n").unwrap();
    let output = run(&four);
    assert!(String::from_utf8_lossy(&output.stderr).contains("`irate` is not one of the model's classes"));

    // As they are, the unknown label is an error that names it.
    let plain = dir.path().join("plain.yaml");
    std::fs::write(&plain, "bootstrap_resamples: 0\nconfidence: 0.95\nseed: 3\ntop_confusions: 5\n").unwrap();
    let output = ser_eval(&[
        "report",
        "--config",
        plain.to_str().unwrap(),
        "--predictions",
        path.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("label `boredom` is not one of the classes"));
}

/// Predictions of two corpora (their `corpus` column): each corpus scored alone beside the pooled
/// figures, with its most given answer.
#[test]
fn two_corpora_are_also_scored_apart() {
    use std::sync::Arc;

    use arrow::array::{Float32Array, RecordBatch, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    let dir = tempfile::tempdir().unwrap();
    // (clip, truth, predicted, corpus): corpus a all right; corpus b answers `sad` three times in four.
    let rows = [
        ("a1", "angry", "angry", "a"),
        ("a2", "sad", "sad", "a"),
        ("b1", "angry", "sad", "b"),
        ("b2", "sad", "sad", "b"),
        ("b3", "happy", "sad", "b"),
        ("b4", "happy", "happy", "b"),
    ];
    let classes = ["angry", "happy", "sad"];
    let mut fields: Vec<Field> =
        ["clip_id", "label", "predicted"].iter().map(|n| Field::new(*n, DataType::Utf8, false)).collect();
    fields.extend(classes.iter().map(|c| Field::new(format!("p_{c}"), DataType::Float32, false)));
    fields.push(Field::new("corpus", DataType::Utf8, false));
    let schema = Arc::new(Schema::new(fields));
    let text = |i: usize| -> Arc<dyn arrow::array::Array> {
        Arc::new(rows.iter().map(|r| Some([r.0, r.1, r.2, r.3][i])).collect::<StringArray>())
    };
    let mut columns = vec![text(0), text(1), text(2)];
    for c in classes {
        columns.push(Arc::new(rows.iter().map(|r| if r.2 == c { 0.8 } else { 0.1 }).collect::<Float32Array>()));
    }
    columns.push(text(3));
    let path = dir.path().join("two.parquet");
    let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
    let mut writer = parquet::arrow::ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), schema, None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    let out = dir.path().join("eval");
    let output = ser_eval(&["report", "--predictions", path.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(metrics["n"], 6);
    let a = &metrics["per_corpus"]["a"];
    assert_eq!((a["n"].as_u64(), a["uar"].as_f64()), (Some(2), Some(1.0)));
    let b = &metrics["per_corpus"]["b"];
    assert_eq!(
        (b["n"].as_u64(), b["most_given"].as_str(), b["most_given_share"].as_f64()),
        (Some(4), Some("sad"), Some(0.75))
    );
    assert_eq!(b["recall"], serde_json::json!({"angry": 0.0, "happy": 0.5, "sad": 1.0}));
    assert!((b["uar"].as_f64().unwrap() - 0.5).abs() < 1e-12);
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("## By corpus") && report.contains("sad (75.0%)"), "{report}");
}
