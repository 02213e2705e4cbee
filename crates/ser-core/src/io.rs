//! Files written whole or not at all, and their hashes. Errors name the path.

use std::io::Write;
use std::path::{Path, PathBuf};

use fs_err as fs;
use sha2::{Digest, Sha256};

/// A file written to `.<name>.tmp-<pid>` beside `path` and renamed over `path` by
/// [`AtomicFile::commit`], after an fsync. Dropped without commit, the temporary file is removed:
/// an interrupted run leaves no half file.
#[derive(Debug)]
pub struct AtomicFile {
    path: PathBuf,
    tmp_path: PathBuf,
    file: Option<std::fs::File>,
}

impl AtomicFile {
    /// Creates the temporary file (and `path`'s folder).
    pub fn create(path: &Path) -> std::io::Result<AtomicFile> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent)?;
        }
        let file_name = path.file_name().ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{}: not a file path", path.display()))
        })?;
        let tmp_path = path.with_file_name(format!(".{}.tmp-{}", file_name.to_string_lossy(), std::process::id()));
        let file = fs::File::create(&tmp_path)?.into_parts().0;
        Ok(AtomicFile { path: path.to_path_buf(), tmp_path, file: Some(file) })
    }

    pub fn file(&mut self) -> &mut std::fs::File {
        self.file.as_mut().expect("file is open until commit")
    }

    /// Flushes to disk and renames into place.
    pub fn commit(mut self) -> std::io::Result<()> {
        let file = self.file.take().expect("commit once");
        file.sync_all().map_err(|e| with_path(&self.tmp_path, e))?;
        drop(file);
        fs::rename(&self.tmp_path, &self.path)?;
        Ok(())
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp_path);
        }
    }
}

/// Writes `bytes` to `path` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut out = AtomicFile::create(path)?;
    out.file().write_all(bytes).map_err(|e| with_path(path, e))?;
    out.commit()
}

/// The sha256 of a file's bytes, in hex.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut file = fs::File::open(path)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher)?;
    Ok(hex::encode(hasher.finalize()))
}

/// The sha256 of bytes in memory, in hex (as [`sha256_file`] gives for a file holding them).
pub fn sha256_bytes(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn with_path(path: &Path, e: std::io::Error) -> std::io::Error {
    std::io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_atomic_file_appears_whole_or_not_at_all() {
        let dir = std::env::temp_dir().join(format!("ser-core-atomic-{}", std::process::id()));
        let path = dir.join("sub").join("out.txt");
        write_atomic(&path, b"whole").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"whole");
        let mut dropped = AtomicFile::create(&path).unwrap();
        dropped.file().write_all(b"half").unwrap();
        drop(dropped);
        assert_eq!(std::fs::read(&path).unwrap(), b"whole", "an uncommitted file leaves the old one");
        assert_eq!(std::fs::read_dir(path.parent().unwrap()).unwrap().count(), 1, "and no temporary file");
        assert_eq!(sha256_file(&path).unwrap(), "5d5766cf2d78701614200418ee1450690d9af12c84d52545e4802f001ad53099");
        let err = sha256_file(&dir.join("missing")).unwrap_err().to_string();
        assert!(err.contains("missing"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
