//! A checkpoint's `history.csv`: one row per epoch.

use std::path::Path;

use crate::{Error, Result};

#[derive(Debug, Clone, PartialEq)]
pub struct History {
    pub epoch: Vec<f64>,
    pub train_loss: Vec<f64>,
    pub val_loss: Vec<f64>,
    pub train_accuracy: Vec<f64>,
    pub val_accuracy: Vec<f64>,
}

/// Parses `history.csv`'s text (read by [`crate::io::read_history`]); `path` names it in errors.
pub fn parse_history(path: &Path, text: &str) -> Result<History> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader.headers().map_err(|e| Error::file(path, e.to_string()))?.clone();
    let wanted = ["epoch", "train_loss", "val_loss", "train_accuracy", "val_accuracy"];
    let mut index = [0usize; 5];
    for (slot, name) in index.iter_mut().zip(wanted) {
        *slot = headers.iter().position(|h| h == name).ok_or_else(|| {
            Error::file(path, format!("missing column `{name}`; history.csv needs {}", wanted.join(", ")))
        })?;
    }
    let mut columns: [Vec<f64>; 5] = Default::default();
    for (row, record) in reader.records().enumerate() {
        let record = record.map_err(|e| Error::file(path, e.to_string()))?;
        for (column, (&i, name)) in columns.iter_mut().zip(index.iter().zip(wanted)) {
            let text = record.get(i).unwrap_or("");
            let value: f64 = text
                .trim()
                .parse()
                .map_err(|_| Error::file(path, format!("row {}: {name} `{text}` is not a number", row + 1)))?;
            column.push(value);
        }
    }
    if columns[0].is_empty() {
        return Err(Error::file(path, "no epochs in the history"));
    }
    let [epoch, train_loss, val_loss, train_accuracy, val_accuracy] = columns;
    Ok(History { epoch, train_loss, val_loss, train_accuracy, val_accuracy })
}
