//! The feature table contract: round trips, readable by Python, clear errors for bad tables.

use std::process::Command;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float32Array, ListArray, RecordBatch, StringArray, UInt32Array};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field, Schema};
use proptest::prelude::*;
use ser_features::FeaturesConfig;
use ser_features::io::{read_feature_table, write_feature_table};
use ser_features::table::{FeatureRow, FeatureTable};

fn config(frames: Option<usize>) -> FeaturesConfig {
    FeaturesConfig { n_mfcc: 3, n_mels: 8, frames, ..FeaturesConfig::reference() }
}

fn emotions() -> Vec<String> {
    ser_features::labels::EMOTIONS.iter().map(|s| s.to_string()).collect()
}

fn row(i: usize, n_frames: usize, value: f32, label: Option<&str>) -> FeatureRow {
    FeatureRow {
        clip_id: format!("clip{i:04}"),
        path: format!("a/clip{i:04}.wav"),
        corpus: "manifest".into(),
        speaker: format!("s{}", i % 3),
        gender: if i.is_multiple_of(2) { Some("female".into()) } else { None },
        label: label.map(str::to_string),
        emotion_code: None,
        intensity: Some("01".into()),
        statement: None,
        repetition: None,
        modality: None,
        vocal_channel: None,
        source_sample_rate: 48_000,
        source_channels: 1,
        duration_s: 1.5 + i as f64,
        sha256: "ab".repeat(32),
        n_frames_source: n_frames as u32 + 1,
        n_frames: n_frames as u32,
        features: (0..n_frames * 3).map(|k| value + k as f32).collect(),
        source_clip_id: i.is_multiple_of(5).then(|| format!("clip{:04}", i + 1)),
        augmentation: i.is_multiple_of(5).then(|| "gain=-3.0dB".to_string()),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]
    #[test]
    fn write_then_read_is_identity(
        specs in proptest::collection::vec((1usize..20, -1e4f32..1e4, 0usize..9), 0..300)
    ) {
        let labels = ser_features::labels::EMOTIONS;
        let rows: Vec<FeatureRow> = specs
            .iter()
            .enumerate()
            .map(|(i, (n, v, l))| row(i, *n, *v, labels.get(*l).copied()))
            .collect();
        let table = FeatureTable { config: config(None), n_coeffs: 3, labels: emotions(), rows };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        write_feature_table(&path, &table).unwrap();
        prop_assert_eq!(read_feature_table(&path).unwrap(), table);
    }
}

#[test]
fn fixed_frames_mismatch_names_the_row() {
    let table = FeatureTable {
        config: config(Some(4)),
        n_coeffs: 3,
        labels: emotions(),
        rows: vec![row(0, 4, 0.0, None), row(1, 5, 0.0, None)],
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.parquet");
    write_feature_table(&path, &table).unwrap();
    let err = read_feature_table(&path).unwrap_err().to_string();
    assert!(err.contains("t.parquet") && err.contains("row 1 (clip_id clip0001)"), "{err}");
}

/// Writes a table as another tool might, without our metadata or with a short features list.
fn write_foreign(path: &std::path::Path, with_metadata: bool, values_in_row0: usize) {
    let item = Arc::new(Field::new("item", DataType::Float32, true));
    let mut schema = Schema::new(vec![
        Field::new("clip_id", DataType::Utf8, false),
        Field::new("speaker", DataType::Utf8, false),
        Field::new("label", DataType::Utf8, true),
        Field::new("n_frames", DataType::UInt32, false),
        Field::new("features", DataType::List(item.clone()), false),
    ]);
    if with_metadata {
        schema = schema.with_metadata(ser_features::table::metadata(&config(None), &emotions()));
    }
    let schema = Arc::new(schema);
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec!["c1"])),
        Arc::new(StringArray::from(vec!["s1"])),
        Arc::new(StringArray::from(vec![Some("happy")])),
        Arc::new(UInt32Array::from(vec![2])),
        Arc::new(ListArray::new(
            item,
            OffsetBuffer::from_lengths([values_in_row0]),
            Arc::new(Float32Array::from(vec![0.5; values_in_row0])),
            None,
        )),
    ];
    let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
    let mut writer = parquet::arrow::ArrowWriter::try_new(std::fs::File::create(path).unwrap(), schema, None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

#[test]
fn a_minimal_foreign_table_reads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("foreign.parquet");
    write_foreign(&path, true, 6);
    let table = read_feature_table(&path).unwrap();
    assert_eq!(table.rows.len(), 1);
    assert_eq!(table.rows[0].label.as_deref(), Some("happy"));
    assert_eq!(table.rows[0].features, vec![0.5; 6]);
}

#[test]
fn missing_metadata_says_what_to_add() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("foreign.parquet");
    write_foreign(&path, false, 6);
    let err = read_feature_table(&path).unwrap_err().to_string();
    assert!(err.contains("foreign.parquet") && err.contains("ser.features_config"), "{err}");
}

#[test]
fn wrong_feature_length_names_row_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("foreign.parquet");
    write_foreign(&path, true, 5);
    let err = read_feature_table(&path).unwrap_err().to_string();
    assert!(err.contains("row 0 (clip_id c1): features has 5 values, expected n_frames*n_coeffs = 2*3 = 6"), "{err}");
}

#[test]
fn not_parquet_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junk.parquet");
    std::fs::write(&path, b"not parquet").unwrap();
    let err = read_feature_table(&path).unwrap_err().to_string();
    assert!(err.contains("junk.parquet"), "{err}");
}

/// The Python interpreter for interop tests: $SER_PYTHON or python3, if it has pyarrow.
pub fn python_with(module: &str) -> Option<String> {
    let python = std::env::var("SER_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&python).args(["-c", &format!("import {module}")]).output().is_ok_and(|o| o.status.success());
    if ok {
        Some(python)
    } else {
        assert!(
            std::env::var_os("SER_REQUIRE_PYTHON").is_none(),
            "SER_REQUIRE_PYTHON is set but {python} lacks `{module}`"
        );
        eprintln!(
            "SKIPPED: {python} with `{module}` is not available; install it (pip install {module}) to run this interop test"
        );
        None
    }
}

#[test]
fn python_reads_the_table() {
    let Some(python) = python_with("pyarrow") else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.parquet");
    let table = FeatureTable {
        config: config(Some(2)),
        n_coeffs: 3,
        labels: emotions(),
        rows: vec![row(0, 2, 1.0, Some("sad")), row(1, 2, 7.0, None)],
    };
    write_feature_table(&path, &table).unwrap();
    let script = r#"
import json, sys
import pyarrow.parquet as pq
t = pq.read_table(sys.argv[1])
meta = {k.decode(): v.decode() for k, v in t.schema.metadata.items()}
cfg = json.loads(meta["ser.features_config"])
row = t.slice(1, 1).to_pylist()[0]
print(json.dumps({"columns": t.column_names, "n_coeffs": int(meta["ser.n_coeffs"]), "frames": cfg["frames"],
                  "clip_id": row["clip_id"], "label": row["label"], "features": row["features"], "rows": t.num_rows}))
"#;
    let out = Command::new(python).args(["-c", script]).arg(&path).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(got["rows"], 2);
    assert_eq!(got["n_coeffs"], 3);
    assert_eq!(got["frames"], 2);
    assert_eq!(got["clip_id"], "clip0001");
    assert_eq!(got["label"], serde_json::Value::Null);
    assert_eq!(got["features"], serde_json::json!([7.0, 8.0, 9.0, 10.0, 11.0, 12.0]));
    let columns: Vec<&str> = got["columns"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    for c in ["clip_id", "path", "corpus", "speaker", "label", "n_frames_source", "n_frames", "features", "sha256"] {
        assert!(columns.contains(&c), "missing {c} in {columns:?}");
    }
}

/// Parts merge as sorted streams: rows interleave by path across parts, more than one record
/// batch each; a part out of path order is refused rather than merged out of order.
#[test]
fn merge_streams_parts_in_path_order() {
    use ser_features::extract::merge_tables;
    use ser_features::io::FeatureTableWriter;
    let dir = tempfile::tempdir().unwrap();
    let write_part = |name: &str, shard: &str, ids: &[usize]| {
        let path = dir.path().join(name);
        let mut writer = FeatureTableWriter::create_part(&path, &config(Some(2)), &emotions(), shard).unwrap();
        writer.write(ids.iter().map(|&i| row(i, 2, i as f32, Some("sad")))).unwrap();
        writer.finish().unwrap();
        path
    };
    // 300 rows in three parts, interleaved: part i holds ids = i mod 3 (three batches of 128).
    let parts: Vec<_> = (0..3)
        .map(|p| {
            write_part(
                &format!("p{p}.parquet"),
                &format!("{p}/3"),
                &(0..300).filter(|i| i % 3 == p).collect::<Vec<_>>(),
            )
        })
        .collect();
    let out = dir.path().join("merged.parquet");
    // A shard's part comes with its rejects file (extract writes both); without it, an error.
    let err = merge_tables(&parts, &out).unwrap_err().to_string();
    assert!(err.contains("p0.rejects.csv is missing"), "{err}");
    for p in 0..3 {
        std::fs::write(dir.path().join(format!("p{p}.rejects.csv")), "path,reason\n").unwrap();
    }
    assert_eq!(merge_tables(&parts, &out).unwrap(), 300);
    let whole = dir.path().join("whole.parquet");
    write_feature_table(
        &whole,
        &FeatureTable {
            config: config(Some(2)),
            n_coeffs: 3,
            labels: emotions(),
            rows: (0..300).map(|i| row(i, 2, i as f32, Some("sad"))).collect(),
        },
    )
    .unwrap();
    assert!(std::fs::read(&out).unwrap() == std::fs::read(&whole).unwrap(), "merged = written whole");

    let unsorted = vec![write_part("u0.parquet", "0/2", &[5, 1]), write_part("u1.parquet", "1/2", &[2])];
    for p in ["u0", "u1"] {
        std::fs::write(dir.path().join(format!("{p}.rejects.csv")), "path,reason\n").unwrap();
    }
    let err = merge_tables(&unsorted, &dir.path().join("bad.parquet")).unwrap_err().to_string();
    assert!(err.contains("u0.parquet") && err.contains("not sorted by path"), "{err}");
    assert!(!dir.path().join("bad.parquet").exists());
}
