//! Parts of a split: a training clip brings its augmented copies, other parts have clips only.

use ser_features::split::{SplitAssignment, SplitPart, SplitRow};
use ser_features::table::{FeatureRow, FeatureTable};
use ser_model::data::{part, whole_table};

fn row(clip_id: &str, source: Option<&str>) -> FeatureRow {
    FeatureRow {
        clip_id: clip_id.into(),
        path: format!("{}.wav", source.unwrap_or(clip_id)),
        corpus: "manifest".into(),
        speaker: "s".into(),
        gender: None,
        label: Some("angry".into()),
        emotion_code: None,
        intensity: None,
        statement: None,
        repetition: None,
        modality: None,
        vocal_channel: None,
        source_sample_rate: 16_000,
        source_channels: 1,
        duration_s: 1.0,
        sha256: String::new(),
        n_frames_source: 2,
        n_frames: 2,
        features: vec![1.0; 6],
        source_clip_id: source.map(str::to_string),
        augmentation: source.map(|_| "gain=1.0dB".to_string()),
    }
}

#[test]
fn training_takes_the_copies_of_its_clips_and_nothing_else_does() {
    let config =
        ser_features::FeaturesConfig { n_mfcc: 3, frames: Some(2), ..ser_features::FeaturesConfig::reference() };
    let rows = vec![row("a", None), row("a~aug1", Some("a")), row("b", None), row("b~aug1", Some("b"))];
    let table = FeatureTable { config, n_coeffs: 3, labels: vec!["angry".into()], rows };
    let split = |clip_id: &str, part: SplitPart| SplitRow { clip_id: clip_id.into(), fold: 0, part };
    let splits = SplitAssignment {
        config_json: String::new(),
        features_config_hash: String::new(),
        n_folds: 1,
        rows: vec![split("a", SplitPart::Train), split("b", SplitPart::Test)],
    };
    assert_eq!(part(&table, &splits, 0, SplitPart::Train).unwrap().clip_ids, ["a", "a~aug1"]);
    assert_eq!(part(&table, &splits, 0, SplitPart::Test).unwrap().clip_ids, ["b"]);
    assert_eq!(whole_table(&table).unwrap().clip_ids, ["a", "b"]);
}
