//! What the spectral analysis (`dsp`) and the prosody (`prosody`) both build on: librosa's
//! centred framing of a clip, and the frames x coefficients matrix they return.

/// A frames x coefficients matrix, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureMatrix {
    pub n_frames: usize,
    pub n_coeffs: usize,
    pub values: Vec<f32>,
}

impl FeatureMatrix {
    pub fn frame(&self, frame_idx: usize) -> &[f32] {
        &self.values[frame_idx * self.n_coeffs..(frame_idx + 1) * self.n_coeffs]
    }
}

/// Frame `t` of a clip centred by `half` zeros on both sides: `padded[t * hop .. t * hop +
/// out.len()]` with `padded = [0; half] ++ samples ++ [0; half]`, where `offset` is `t * hop`
/// (librosa's `center=True` framing with `pad_mode="constant"`, the STFT's and YIN's).
pub fn centred_frame(samples: &[f32], offset: usize, half: usize, out: &mut [f32]) {
    let start = offset as isize - half as isize;
    out.fill(0.0);
    let from = start.max(0) as usize;
    let to = ((start + out.len() as isize).max(0) as usize).min(samples.len());
    if from < to {
        let at = (from as isize - start) as usize;
        out[at..at + (to - from)].copy_from_slice(&samples[from..to]);
    }
}
