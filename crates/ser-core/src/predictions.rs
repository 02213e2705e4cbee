//! `predictions.parquet`'s columns: `clip_id`, `label` (the true label, nullable), `predicted`,
//! and one `p_<label>` probability column per class in the checkpoint's class order.

pub const COL_CLIP_ID: &str = "clip_id";
pub const COL_LABEL: &str = "label";
pub const COL_PREDICTED: &str = "predicted";
/// A probability column is this prefix and the class's label.
pub const PROB_PREFIX: &str = "p_";
