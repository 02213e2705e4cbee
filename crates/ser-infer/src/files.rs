//! Many audio files classified in bounded memory: a chunk of files at a time is read and decoded
//! in parallel, then all their windows are classified in one batch. A bad file keeps its error
//! and the rest go on. Adapted together (one speaker's files), a first pass reads them all for
//! their speech's mean frame.

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::timeline::{Adapt, Recording, Span, TimelineConfig, add_speech, predict_recordings_centred};
use crate::{Classifier, Error, Result};

/// The samples of the files that decoded.
fn decoded(audio: &[Result<ser_features::audio::Audio>]) -> Vec<(&[f32], u32)> {
    audio.iter().filter_map(|a| a.as_ref().ok()).map(|a| (a.samples.as_slice(), a.sample_rate)).collect()
}

/// Files decoded and classified at once.
pub const CHUNK: usize = 64;

/// Calls `on_result` for every file, in order, with its answer over `span` (windows and silence
/// as `config` says) or its error (naming the file). Files longer than `max_duration_s` are
/// refused.
pub fn predict_files(
    classifier: &Classifier,
    files: &[PathBuf],
    max_duration_s: f32,
    config: &TimelineConfig,
    span: Span,
    mut on_result: impl FnMut(&Path, Result<Recording>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let read = |chunk: &[PathBuf]| -> Vec<Result<ser_features::audio::Audio>> {
        chunk.par_iter().map(|p| ser_features::io::read_audio(p, max_duration_s).map_err(Error::from)).collect()
    };
    // Adapted together: a first pass for the mean frame of every file's speech, in bounded memory.
    let mut centre = None;
    if config.adapt == Adapt::Together {
        let mut speech = ser_model::predict::MeanFrame::default();
        for (chunk_idx, chunk) in files.chunks(CHUNK).enumerate() {
            if files.len() > CHUNK {
                tracing::info!(
                    "the speech of files {}..{} of {}",
                    chunk_idx * CHUNK + 1,
                    chunk_idx * CHUNK + chunk.len(),
                    files.len()
                );
            }
            add_speech(&mut speech, classifier, &decoded(&read(chunk)), config);
        }
        centre = speech.mean();
    }
    for (chunk_idx, chunk) in files.chunks(CHUNK).enumerate() {
        if files.len() > CHUNK {
            let first = chunk_idx * CHUNK;
            tracing::info!("files {}..{} of {}", first + 1, first + chunk.len(), files.len());
        }
        let audio = read(chunk);
        let clips = decoded(&audio);
        let mut predictions =
            predict_recordings_centred(classifier, &clips, config, span, centre.as_deref()).into_iter();
        for (path, audio) in chunk.iter().zip(audio) {
            let result = match audio {
                Err(e) => Err(e),
                Ok(_) => predictions.next().expect("one prediction per decoded clip").map_err(|e| e.in_file(path)),
            };
            on_result(path, result)?;
        }
    }
    Ok(())
}
