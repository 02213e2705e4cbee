//! All of ser-pipeline's disk work: reading pipeline files, writing the resolved params files and
//! the plan.

use std::path::{Path, PathBuf};

use fs_err as fs;

use crate::{Error, Result};

/// Where the resolved params files of pipeline `name` live: `<artifacts>/<name>/pipeline/`.
pub fn resolved_dir(artifacts: &Path, name: &str) -> PathBuf {
    artifacts.join(name).join("pipeline")
}

/// The names of the pipelines in `dir` (its `.yaml` files), sorted.
pub fn pipeline_names(dir: &Path) -> Result<Vec<String>> {
    let mut names: Vec<String> = fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "yaml"))
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect();
    names.sort();
    Ok(names)
}

/// The text of a pipeline file; a missing one is named with the pipelines that do exist.
pub fn read_pipeline(path: &Path, dir: &Path) -> Result<String> {
    if !path.is_file() {
        let known = pipeline_names(dir).unwrap_or_default();
        return Err(Error::Pipeline {
            path: path.to_path_buf(),
            message: format!("no such pipeline (pipelines in {}: {})", dir.display(), known.join(", ")),
        });
    }
    Ok(fs::read_to_string(path)?)
}

/// Writes the resolved params files `files` (a file name, and its text or `None` for a stage the
/// pipeline does not have) into `dir`, rewriting only the files whose content changed (so make
/// re-runs only the stages whose params changed) and removing those of absent stages. Returns
/// the files rewritten.
pub fn write_resolved(dir: &Path, files: &[(String, Option<String>)]) -> Result<Vec<PathBuf>> {
    fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    for (name, text) in files {
        let path = dir.join(name);
        match text {
            Some(text) if write_if_changed(&path, text)? => written.push(path),
            Some(_) => {}
            None if path.exists() => fs::remove_file(&path)?,
            None => {}
        }
    }
    Ok(written)
}

/// Writes `text` to `path` atomically unless the file already holds exactly that; true when it
/// wrote.
pub fn write_if_changed(path: &Path, text: &str) -> Result<bool> {
    if std::fs::read(path).is_ok_and(|old| old == text.as_bytes()) {
        return Ok(false);
    }
    ser_core::io::write_atomic(path, text.as_bytes())?;
    Ok(true)
}

/// Writes the plan, whole, atomically (always: make reads a plan newer than its inputs as current).
pub fn write_plan(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    ser_core::io::write_atomic(path, text.as_bytes())?;
    Ok(())
}
