//! File-name conventions of the corpora, on generated names.

use std::path::Path;

use ser_features::labels::{Corpus, NameError, parse_name};

#[track_caller]
fn check(corpus: Corpus, name: &str, expect: Option<(&str, &str)>) {
    match (parse_name(corpus, Path::new(name)), expect) {
        (Ok(meta), Some((label, speaker))) => {
            assert_eq!(meta.label.as_deref(), Some(label), "{name}");
            assert_eq!(meta.speaker, speaker, "{name}");
        }
        (Err(_), None) => {}
        (got, expect) => panic!("{name}: got {got:?}, expected {expect:?}"),
    }
}

#[test]
fn ravdess() {
    check(Corpus::Ravdess, "Actor_12/03-01-05-01-02-01-12.wav", Some(("angry", "12")));
    check(Corpus::Ravdess, "03-01-01-01-01-01-01.wav", Some(("neutral", "01")));
    check(Corpus::Ravdess, "03-01-08-02-02-02-24.wav", Some(("surprised", "24")));
    check(Corpus::Ravdess, "03-01-09-01-01-01-01.wav", None);
    check(Corpus::Ravdess, "03-01-05-01-02-01.wav", None);
    check(Corpus::Ravdess, "notes.wav", None);
}

#[test]
fn ravdess_fields_and_gender() {
    let meta = parse_name(Corpus::Ravdess, Path::new("03-01-06-02-01-02-07.wav")).unwrap();
    assert_eq!(meta.gender.as_deref(), Some("male"));
    assert_eq!(meta.intensity.as_deref(), Some("02"));
    assert_eq!(meta.statement.as_deref(), Some("01"));
    assert_eq!(meta.repetition.as_deref(), Some("02"));
    assert_eq!(meta.emotion_code.as_deref(), Some("06"));
    let meta = parse_name(Corpus::Ravdess, Path::new("03-01-06-02-01-02-08.wav")).unwrap();
    assert_eq!(meta.gender.as_deref(), Some("female"));
}

#[test]
fn ravdess_song_and_video_are_excluded_not_rejected() {
    assert!(matches!(parse_name(Corpus::Ravdess, Path::new("03-02-05-01-02-01-12.wav")), Err(NameError::Excluded(_))));
    assert!(matches!(parse_name(Corpus::Ravdess, Path::new("01-01-05-01-02-01-12.wav")), Err(NameError::Excluded(_))));
}

#[test]
fn tess() {
    check(Corpus::Tess, "OAF_back_angry.wav", Some(("angry", "OAF")));
    check(Corpus::Tess, "YAF_dog_ps.wav", Some(("surprised", "YAF")));
    check(Corpus::Tess, "OAF_base_fear.wav", Some(("fearful", "OAF")));
    check(Corpus::Tess, "OAF_back.wav", None);
}

#[test]
fn emodb() {
    check(Corpus::Emodb, "03a01Fa.wav", Some(("happy", "03")));
    check(Corpus::Emodb, "16b10Wb.wav", Some(("angry", "16")));
    check(Corpus::Emodb, "08a02Ac.wav", Some(("fearful", "08")));
    // Boredom is EmoDB's own label, outside the default eight: the label set leaves it out
    // unless `labels` names it.
    assert_eq!(parse_name(Corpus::Emodb, Path::new("03a01Lb.wav")).unwrap().label.as_deref(), Some("boredom"));
    check(Corpus::Emodb, "ab.wav", None);
}

#[test]
fn savee() {
    check(Corpus::Savee, "DC_a01.wav", Some(("angry", "DC")));
    check(Corpus::Savee, "JK_sa15.wav", Some(("sad", "JK")));
    check(Corpus::Savee, "KL_su03.wav", Some(("surprised", "KL")));
    check(Corpus::Savee, "JE/n30.wav", Some(("neutral", "JE")));
    check(Corpus::Savee, "DC_x01.wav", None);
}

#[test]
fn crema_d() {
    check(Corpus::CremaD, "1001_DFA_ANG_XX.wav", Some(("angry", "1001")));
    check(Corpus::CremaD, "1091_TSI_NEU_XX.wav", Some(("neutral", "1091")));
    check(Corpus::CremaD, "1012_IEO_HAP_HI.wav", Some(("happy", "1012")));
    check(Corpus::CremaD, "1001_DFA_XXX_XX.wav", None);
}

#[test]
fn nemo() {
    check(Corpus::Nemo, "EB0_anger_1.wav", Some(("angry", "EB0")));
    check(Corpus::Nemo, "samples/KS0_happiness_12.wav", Some(("happy", "KS0")));
    check(Corpus::Nemo, "WR0_sadness_90.wav", Some(("sad", "WR0")));
    check(Corpus::Nemo, "MP0_fear_3.wav", Some(("fearful", "MP0")));
    check(Corpus::Nemo, "IC0_surprised_7.wav", Some(("surprised", "IC0")));
    check(Corpus::Nemo, "KD0_neutral_40.wav", Some(("neutral", "KD0")));
    check(Corpus::Nemo, "EB0_boredom_1.wav", None);
    check(Corpus::Nemo, "EB0_anger.wav", None);
    check(Corpus::Nemo, "EB0_anger_x.wav", None);
    // The names give the speaker's gender (the authors' data.tsv), and the sentence's own key.
    let meta = parse_name(Corpus::Nemo, Path::new("KS0_anger_5.wav")).unwrap();
    assert_eq!(meta.gender.as_deref(), Some("male"));
    assert_eq!((meta.emotion_code.as_deref(), meta.statement.as_deref()), (Some("anger"), Some("anger_5")));
    assert_eq!(parse_name(Corpus::Nemo, Path::new("XY9_anger_5.wav")).unwrap().gender, None, "an unknown speaker");
}
