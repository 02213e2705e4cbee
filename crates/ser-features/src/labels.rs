//! The corpora's file-name conventions, the eight emotions they are labelled with by default, and
//! a table's label set (`labels` and `label_map` in features.yaml).

use std::path::Path;

/// The eight emotions the corpus conventions label clips with, in class order: the default label
/// set of a table (RAVDESS keeps all eight).
pub const EMOTIONS: [&str; 8] = ["angry", "calm", "disgust", "fearful", "happy", "neutral", "sad", "surprised"];

/// The `gender` column's values, in the order a model's gender head gives them.
pub const GENDERS: [&str; 2] = [FEMALE, MALE];
pub const FEMALE: &str = "female";
pub const MALE: &str = "male";

/// A corpus label after `label_map`: renamed, kept, or `None` when the map drops it.
pub fn map_label(config: &crate::FeaturesConfig, label: &str) -> Option<String> {
    match config.label_map.get(label) {
        Some(target) => target.clone(),
        None => Some(label.to_string()),
    }
}

/// A table's label set, in class order: `labels` when features.yaml gives it; else, for a
/// manifest, its labels (after `label_map`) sorted; else the eight emotions after `label_map`
/// (renamed ones in their first place, dropped ones left out).
pub fn label_set<'a>(
    config: &crate::FeaturesConfig,
    manifest_labels: Option<impl Iterator<Item = &'a str>>,
) -> Vec<String> {
    if let Some(labels) = &config.labels {
        return labels.clone();
    }
    let mut out: Vec<String> = Vec::new();
    match manifest_labels {
        Some(found) => {
            let set: std::collections::BTreeSet<String> = found.filter_map(|l| map_label(config, l)).collect();
            out.extend(set);
        }
        None => {
            for l in EMOTIONS.iter().filter_map(|e| map_label(config, e)) {
                if !out.contains(&l) {
                    out.push(l);
                }
            }
        }
    }
    out
}

/// The corpora whose file names carry labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Corpus {
    Ravdess,
    Tess,
    Emodb,
    Savee,
    CremaD,
    /// nEMO (Polish): names, plus `data.tsv` beside them for the sentence text.
    Nemo,
    /// Labels from a manifest CSV.
    Manifest,
}

impl Corpus {
    pub fn as_str(self) -> &'static str {
        match self {
            Corpus::Ravdess => "ravdess",
            Corpus::Tess => "tess",
            Corpus::Emodb => "emodb",
            Corpus::Savee => "savee",
            Corpus::CremaD => "crema_d",
            Corpus::Nemo => "nemo",
            Corpus::Manifest => "manifest",
        }
    }
}

/// What a file name tells about a clip.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClipMeta {
    /// The file stem, unique within a corpus.
    pub clip_id: String,
    /// The corpus's label (one of [`EMOTIONS`] for the conventions, EmoDB's `boredom` aside), or
    /// `None` when unknown.
    pub label: Option<String>,
    pub speaker: String,
    /// [`FEMALE`], [`MALE`], or `None`.
    pub gender: Option<String>,
    /// The corpus's own emotion code (RAVDESS `05`, EmoDB `W`, CREMA-D `ANG`, ...).
    pub emotion_code: Option<String>,
    pub intensity: Option<String>,
    pub statement: Option<String>,
    pub repetition: Option<String>,
    pub modality: Option<String>,
    pub vocal_channel: Option<String>,
}

/// Why a file is not part of the corpus. `Excluded` files are skipped with a count (song files,
/// video modalities, classes outside the vocabulary); `Unparsable` ones are rejects.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("excluded: {0}")]
    Excluded(String),
    #[error("file name does not follow the {corpus} convention ({expected})")]
    Unparsable { corpus: &'static str, expected: &'static str },
}

/// Parses the labels from a file name of the given corpus.
pub fn parse_name(corpus: Corpus, path: &Path) -> Result<ClipMeta, NameError> {
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    match corpus {
        Corpus::Ravdess => parse_ravdess(stem),
        Corpus::Tess => parse_tess(stem),
        Corpus::Emodb => parse_emodb(stem),
        Corpus::Savee => parse_savee(stem, path),
        Corpus::CremaD => parse_crema_d(stem),
        Corpus::Nemo => parse_nemo(stem),
        Corpus::Manifest => Err(NameError::Excluded("manifest clips take labels from the manifest".into())),
    }
}

const RAVDESS_FORMAT: &str = "MM-VV-EE-II-SS-RR-AA.wav, e.g. 03-01-05-01-02-01-12.wav";

/// RAVDESS: `MM-VV-EE-II-SS-RR-AA`. Modality 03 (audio only) and vocal channel 01 (speech) are
/// kept; song (VV 02) and video modalities are excluded.
pub fn parse_ravdess(stem: &str) -> Result<ClipMeta, NameError> {
    let bad = || NameError::Unparsable { corpus: "RAVDESS", expected: RAVDESS_FORMAT };
    let fields: Vec<&str> = stem.split('-').collect();
    if fields.len() != 7 || fields.iter().any(|f| f.len() != 2 || !f.bytes().all(|b| b.is_ascii_digit())) {
        return Err(bad());
    }
    let (modality, channel, emotion, intensity, statement, repetition, actor) =
        (fields[0], fields[1], fields[2], fields[3], fields[4], fields[5], fields[6]);
    if modality != "03" {
        return Err(NameError::Excluded(format!("modality {modality} is not audio-only (03)")));
    }
    if channel != "01" {
        return Err(NameError::Excluded(format!("vocal channel {channel} is not speech (01)")));
    }
    let label = match emotion {
        "01" => "neutral",
        "02" => "calm",
        "03" => "happy",
        "04" => "sad",
        "05" => "angry",
        "06" => "fearful",
        "07" => "disgust",
        "08" => "surprised",
        _ => return Err(bad()),
    };
    let actor_number: u32 = actor.parse().map_err(|_| bad())?;
    if actor_number == 0 {
        return Err(bad());
    }
    Ok(ClipMeta {
        clip_id: stem.to_string(),
        label: Some(label.to_string()),
        speaker: actor.to_string(),
        gender: Some(if actor_number.is_multiple_of(2) { FEMALE } else { MALE }.to_string()),
        emotion_code: Some(emotion.to_string()),
        intensity: Some(intensity.to_string()),
        statement: Some(statement.to_string()),
        repetition: Some(repetition.to_string()),
        modality: Some(modality.to_string()),
        vocal_channel: Some(channel.to_string()),
    })
}

/// TESS: `OAF_back_angry` / `YAF_dog_ps` (speaker OAF or YAF, both female; `ps` = surprised).
pub fn parse_tess(stem: &str) -> Result<ClipMeta, NameError> {
    let bad =
        || NameError::Unparsable { corpus: "TESS", expected: "SPEAKER_word_emotion.wav, e.g. OAF_back_angry.wav" };
    let parts: Vec<&str> = stem.split('_').collect();
    if parts.len() != 3 {
        return Err(bad());
    }
    let code = parts[2].to_ascii_lowercase();
    let label = match code.as_str() {
        "angry" => "angry",
        "disgust" => "disgust",
        "fear" | "fearful" => "fearful",
        "happy" => "happy",
        "neutral" => "neutral",
        "sad" => "sad",
        "ps" | "pleasant_surprise" | "surprised" => "surprised",
        _ => return Err(bad()),
    };
    Ok(ClipMeta {
        clip_id: stem.to_string(),
        label: Some(label.to_string()),
        speaker: parts[0].to_string(),
        gender: Some(FEMALE.into()),
        emotion_code: Some(parts[2].to_string()),
        statement: Some(parts[1].to_string()),
        ..ClipMeta::default()
    })
}

/// Berlin EmoDB: `03a01Fa` = speaker 03, text a01, emotion letter F, version a. Boredom (L) is
/// labelled `boredom`, outside the eight emotions: give it a place in `labels` to keep it.
pub fn parse_emodb(stem: &str) -> Result<ClipMeta, NameError> {
    let bad = || NameError::Unparsable { corpus: "EmoDB", expected: "SStttEv.wav, e.g. 03a01Fa.wav" };
    let bytes = stem.as_bytes();
    if bytes.len() < 7 || !bytes[0..2].iter().all(u8::is_ascii_digit) {
        return Err(bad());
    }
    let speaker = &stem[0..2];
    let text = &stem[2..5];
    let letter = &stem[5..6];
    let label = match letter {
        "W" => "angry",
        "E" => "disgust",
        "A" => "fearful",
        "F" => "happy",
        "T" => "sad",
        "N" => "neutral",
        "L" => "boredom",
        _ => return Err(bad()),
    };
    // EmoDB speakers: 03, 10, 11, 12, 15 male; 08, 09, 13, 14, 16 female.
    let gender = match speaker {
        "03" | "10" | "11" | "12" | "15" => Some(MALE),
        "08" | "09" | "13" | "14" | "16" => Some(FEMALE),
        _ => None,
    };
    Ok(ClipMeta {
        clip_id: stem.to_string(),
        label: Some(label.to_string()),
        speaker: speaker.to_string(),
        gender: gender.map(str::to_string),
        emotion_code: Some(letter.to_string()),
        statement: Some(text.to_string()),
        repetition: Some(stem[6..].to_string()),
        ..ClipMeta::default()
    })
}

/// SAVEE: `DC_a01` (speaker DC, JE, JK or KL, all male) or, in the per-speaker folder layout,
/// `DC/a01.wav`. Codes: a anger, d disgust, f fear, h happiness, n neutral, sa sadness,
/// su surprise.
pub fn parse_savee(stem: &str, path: &Path) -> Result<ClipMeta, NameError> {
    let bad = || NameError::Unparsable { corpus: "SAVEE", expected: "SP_eNN.wav, e.g. DC_a01.wav" };
    let (speaker, code) = match stem.split_once('_') {
        Some((speaker, code)) => (speaker.to_string(), code),
        None => {
            let parent = path.parent().and_then(|p| p.file_name()).and_then(|s| s.to_str()).ok_or_else(bad)?;
            (parent.to_string(), stem)
        }
    };
    let letters: String = code.chars().take_while(|c| c.is_ascii_alphabetic()).collect();
    let number = &code[letters.len()..];
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) || speaker.is_empty() {
        return Err(bad());
    }
    let label = match letters.as_str() {
        "a" => "angry",
        "d" => "disgust",
        "f" => "fearful",
        "h" => "happy",
        "n" => "neutral",
        "sa" => "sad",
        "su" => "surprised",
        _ => return Err(bad()),
    };
    Ok(ClipMeta {
        clip_id: format!("{speaker}_{code}"),
        label: Some(label.to_string()),
        speaker,
        gender: Some(MALE.into()),
        emotion_code: Some(letters),
        statement: Some(number.to_string()),
        ..ClipMeta::default()
    })
}

/// CREMA-D: `1001_DFA_ANG_XX` = actor 1001, sentence DFA, emotion ANG, level XX.
pub fn parse_crema_d(stem: &str) -> Result<ClipMeta, NameError> {
    let bad = || NameError::Unparsable { corpus: "CREMA-D", expected: "AAAA_SSS_EEE_LL.wav, e.g. 1001_DFA_ANG_XX.wav" };
    let parts: Vec<&str> = stem.split('_').collect();
    if parts.len() != 4 || parts[0].len() != 4 || !parts[0].bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let label = match parts[2] {
        "ANG" => "angry",
        "DIS" => "disgust",
        "FEA" => "fearful",
        "HAP" => "happy",
        "NEU" => "neutral",
        "SAD" => "sad",
        _ => return Err(bad()),
    };
    Ok(ClipMeta {
        clip_id: stem.to_string(),
        label: Some(label.to_string()),
        speaker: parts[0].to_string(),
        gender: None,
        emotion_code: Some(parts[2].to_string()),
        statement: Some(parts[1].to_string()),
        intensity: Some(parts[3].to_string()),
        ..ClipMeta::default()
    })
}

/// nEMO's emotion words (the `emotion` column of its `data.tsv`, and the middle of its file
/// names), each with the emotion of [`EMOTIONS`] it is.
pub const NEMO_EMOTIONS: [(&str, &str); 6] = [
    ("anger", "angry"),
    ("fear", "fearful"),
    ("happiness", "happy"),
    ("neutral", "neutral"),
    ("sadness", "sad"),
    ("surprised", "surprised"),
];

/// nEMO's nine speakers and their genders (its `data.tsv`), so that the names alone give them.
const NEMO_SPEAKERS: [(&str, &str); 9] = [
    ("EB0", FEMALE),
    ("IC0", FEMALE),
    ("KD0", FEMALE),
    ("KS0", MALE),
    ("MK0", FEMALE),
    ("MP0", MALE),
    ("SM0", MALE),
    ("TP0", MALE),
    ("WR0", MALE),
];

/// nEMO: `EB0_anger_1` = speaker EB0, emotion `anger`, that emotion's sentence 1. The sentence
/// text, when the corpus's `data.tsv` is read ([`crate::extract::discover`]), becomes `statement`;
/// from the name alone, `statement` is `anger_1`, the sentence's own key.
pub fn parse_nemo(stem: &str) -> Result<ClipMeta, NameError> {
    let bad = || NameError::Unparsable { corpus: "nEMO", expected: "SPK_emotion_N.wav, e.g. EB0_anger_1.wav" };
    let parts: Vec<&str> = stem.split('_').collect();
    let [speaker, word, number] = parts[..] else {
        return Err(bad());
    };
    if speaker.is_empty() || number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let label = NEMO_EMOTIONS.iter().find(|(w, _)| *w == word).map(|(_, e)| *e).ok_or_else(bad)?;
    let gender = NEMO_SPEAKERS.iter().find(|(s, _)| *s == speaker).map(|(_, g)| g.to_string());
    Ok(ClipMeta {
        clip_id: stem.to_string(),
        label: Some(label.to_string()),
        speaker: speaker.to_string(),
        gender,
        emotion_code: Some(word.to_string()),
        statement: Some(format!("{word}_{number}")),
        ..ClipMeta::default()
    })
}
