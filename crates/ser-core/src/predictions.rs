//! `predictions.parquet`'s columns: `clip_id`, `label` (the true label, nullable), `predicted`,
//! one `p_<label>` probability column per class in the checkpoint's class order, and optionally
//! `corpus` (the clip's corpus, from the feature table), by which ser-eval scores each corpus.

pub const COL_CLIP_ID: &str = "clip_id";
pub const COL_LABEL: &str = "label";
pub const COL_PREDICTED: &str = "predicted";
/// A probability column is this prefix and the class's label.
pub const PROB_PREFIX: &str = "p_";
/// The clip's corpus (optional).
pub const COL_CORPUS: &str = "corpus";
