//! A checkpoint's `history.csv`: one row per epoch; the validation cells are empty in a run
//! without a validation part.

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
            let text = record.get(i).unwrap_or("").trim();
            // An empty validation cell: a run without a validation part (NaN, drawn as a gap).
            let value: f64 = if text.is_empty() && name.starts_with("val_") {
                f64::NAN
            } else {
                text.parse()
                    .map_err(|_| Error::file(path, format!("row {}: {name} `{text}` is not a number", row + 1)))?
            };
            column.push(value);
        }
    }
    if columns[0].is_empty() {
        return Err(Error::file(path, "no epochs in the history"));
    }
    let [epoch, train_loss, val_loss, train_accuracy, val_accuracy] = columns;
    Ok(History { epoch, train_loss, val_loss, train_accuracy, val_accuracy })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_validation_cells_are_gaps_and_other_gaps_are_errors() {
        let head = "epoch,train_loss,train_accuracy,val_loss,val_accuracy,val_macro_f1,val_uar,learning_rate\n";
        let h = parse_history(Path::new("h.csv"), &format!("{head}1,1.5,0.4,,,,,1e-3\n2,1.2,0.5,,,,,1e-3\n")).unwrap();
        assert_eq!(h.train_loss, vec![1.5, 1.2]);
        assert!(h.val_loss.iter().chain(&h.val_accuracy).all(|v| v.is_nan()));
        let err = parse_history(Path::new("h.csv"), &format!("{head}1,,0.4,,,,,1e-3\n")).unwrap_err().to_string();
        assert!(err.contains("h.csv") && err.contains("row 1: train_loss"), "{err}");
    }
}
