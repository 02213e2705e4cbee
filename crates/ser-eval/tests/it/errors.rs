//! Bad input gets a clear error naming the file.

use std::sync::Arc;

use arrow::array::{Float32Array, RecordBatch, StringArray};
use arrow::datatypes::{Field, Schema};
use ser_eval::read_predictions;

#[track_caller]
fn check(columns: Vec<(&str, Arc<dyn arrow::array::Array>)>, expect: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("preds.parquet");
    let fields: Vec<Field> = columns.iter().map(|(n, a)| Field::new(*n, a.data_type().clone(), true)).collect();
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(schema.clone(), columns.into_iter().map(|(_, a)| a).collect()).unwrap();
    let mut writer = parquet::arrow::ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), schema, None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    let err = read_predictions(&path, &ser_eval::ClassSet::All).unwrap_err().to_string();
    assert!(err.contains("preds.parquet"), "{err}");
    for needle in expect {
        assert!(err.contains(needle), "`{needle}` not in: {err}");
    }
}

fn strings(values: &[Option<&str>]) -> Arc<dyn arrow::array::Array> {
    Arc::new(values.iter().copied().collect::<StringArray>())
}

#[test]
fn missing_column() {
    check(
        vec![("clip_id", strings(&[Some("a")])), ("label", strings(&[Some("sad")]))],
        &["missing column `predicted`"],
    );
}

#[test]
fn unknown_label() {
    check(
        vec![
            ("clip_id", strings(&[Some("a"), Some("b")])),
            ("label", strings(&[Some("sad"), Some("bored")])),
            ("predicted", strings(&[Some("sad"), Some("sad")])),
        ],
        &["row 1 (clip_id b)", "label `bored` is not one of the classes"],
    );
}

#[test]
fn unknown_prediction_against_probability_columns() {
    check(
        vec![
            ("clip_id", strings(&[Some("a")])),
            ("label", strings(&[Some("sad")])),
            ("predicted", strings(&[Some("angry")])),
            ("p_sad", Arc::new(Float32Array::from(vec![0.4]))),
            ("p_happy", Arc::new(Float32Array::from(vec![0.6]))),
        ],
        &["predicted `angry` is not one of the classes [sad, happy]"],
    );
}

#[test]
fn bad_probability() {
    check(
        vec![
            ("clip_id", strings(&[Some("a")])),
            ("label", strings(&[Some("sad")])),
            ("predicted", strings(&[Some("sad")])),
            ("p_sad", Arc::new(Float32Array::from(vec![f32::NAN]))),
        ],
        &["row 0 (clip_id a): p_sad", "expected a probability"],
    );
}

#[test]
fn no_rows_and_no_labels() {
    check(vec![("clip_id", strings(&[])), ("label", strings(&[])), ("predicted", strings(&[]))], &["has no rows"]);
    check(
        vec![("clip_id", strings(&[Some("a")])), ("label", strings(&[None])), ("predicted", strings(&[Some("sad")]))],
        &["none of its 1 rows has a true label"],
    );
}

#[test]
fn empty_junk_and_absent_files() {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in [("empty.parquet", &b""[..]), ("junk.parquet", &b"PAR1 not really"[..])] {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let err = read_predictions(&path, &ser_eval::ClassSet::All).unwrap_err().to_string();
        assert!(err.contains(name) && err.contains("not a readable Parquet file"), "{err}");
    }
    let err = read_predictions(&dir.path().join("absent.parquet"), &ser_eval::ClassSet::All).unwrap_err().to_string();
    assert!(err.contains("absent.parquet"), "{err}");
}
