//! The only module besides `main.rs` that touches the disk: reading predictions files,
//! histories and fonts, atomic writes, sha256, JSON.

use std::path::Path;

use crate::config::ClassSet;

/// Writes `bytes` to `path` atomically (`ser_core::io::write_atomic`), the error naming the path.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    ser_core::io::write_atomic(path, bytes).map_err(|e| Error::io(path, e))
}

/// The sha256 of a file (`ser_core::io::sha256_file`).
pub fn sha256_file(path: &Path) -> Result<String> {
    ser_core::io::sha256_file(path).map_err(|e| Error::io(path, e))
}
use crate::history::{History, parse_history};
use crate::predictions::{PredictionTable, parse_predictions};
use crate::{Error, Result};

/// Reads a predictions file ([`parse_predictions`]).
pub fn read_predictions(path: &Path, class_set: &ClassSet) -> Result<PredictionTable> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_predictions(path, bytes::Bytes::from(bytes), class_set)
}

/// Reads a checkpoint's `history.csv` ([`parse_history`]).
pub fn read_history(path: &Path) -> Result<History> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    parse_history(path, &text)
}

/// Where pictures look for a TrueType font when `SER_FONT` is not set.
const FONT_CANDIDATES: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf",
    "/usr/share/fonts/noto/NotoSans-Regular.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
    "/Library/Fonts/Arial.ttf",
    "C:\\Windows\\Fonts\\arial.ttf",
];

/// The font `SER_FONT` names, or the first of the usual system fonts found; `Err` says what was
/// tried and how to fix it.
pub fn read_font() -> std::result::Result<(std::path::PathBuf, Vec<u8>), String> {
    let candidates: Vec<std::path::PathBuf> = match std::env::var_os("SER_FONT") {
        Some(path) => vec![path.into()],
        None => FONT_CANDIDATES.iter().map(Into::into).collect(),
    };
    for path in &candidates {
        if let Ok(bytes) = std::fs::read(path) {
            return Ok((path.clone(), bytes));
        }
    }
    Err(format!(
        "no TrueType font found (tried {}); set SER_FONT=/path/to/font.ttf to draw pictures",
        candidates.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    ))
}

pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value).map_err(|e| Error::file(path, e.to_string()))?;
    text.push('\n');
    write_atomic(path, text.as_bytes())
}

pub fn read_json(path: &Path) -> Result<serde_json::Value> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::file(path, format!("not valid JSON: {e}")))
}
