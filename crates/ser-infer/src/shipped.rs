//! The model ser ships: the checkpoint in `models/<name>/` (with its card and licence), built
//! into this library when the `shipped-model` feature is on, as it is by default.
//!
//! Built in rather than looked up beside the binary: a `ser-infer` copied anywhere (a container,
//! another machine, `cargo install`) answers without a second file to carry or lose, and the
//! weights it answers with are the ones it was built and tested with. The weights are learned
//! from RAVDESS and nEMO (CC BY-NC-SA 4.0), so a binary or wheel built with them carries those
//! terms; `--no-default-features` builds one without them (MIT OR Apache-2.0 alone), which then
//! needs a checkpoint to be named.

use std::path::Path;

use candle_core::Device;

use crate::{Classifier, Error, Result};

/// Where the shipped model's files are kept, relative to the workspace root: the one folder
/// under `models/` with a `model.json` (found by `build.rs`), which `make model` writes.
pub const DIR: &str = env!("SER_SHIPPED_MODEL_DIR");

/// Whether this build holds the shipped model.
pub const BUILT_IN: bool = cfg!(feature = "shipped-model");

/// `model.json` and `model.safetensors` of [`DIR`], as built in.
#[cfg(feature = "shipped-model")]
fn files() -> Option<(&'static [u8], &'static [u8])> {
    Some((
        include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../", env!("SER_SHIPPED_MODEL_DIR"), "/model.json")),
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../",
            env!("SER_SHIPPED_MODEL_DIR"),
            "/model.safetensors"
        )),
    ))
}

#[cfg(not(feature = "shipped-model"))]
fn files() -> Option<(&'static [u8], &'static [u8])> {
    None
}

/// The shipped model, ready on `device`.
pub fn load(device: &Device) -> Result<Classifier> {
    let (sidecar, weights) = files().ok_or_else(|| {
        Error::Invalid(format!(
            "this build has no shipped model (built without the `shipped-model` feature); name a checkpoint \
             directory, for example {DIR} from the repository, or one `ser-model train` wrote"
        ))
    })?;
    let checkpoint = ser_model::io::checkpoint_from_bytes(Path::new(DIR), sidecar, weights, device)?;
    Ok(Classifier::from_checkpoint(checkpoint))
}
