//! The forward pass against Keras, on fixed weights written by `tests/data/make_golden.py`
//! (the Python that produced them is in that file).

use candle_core::{D, Device, ModuleT, Tensor};
use ser_model::network;

#[derive(serde::Deserialize)]
struct Golden {
    config: serde_json::Value,
    frames: usize,
    n_coeffs: usize,
    input: Vec<Vec<Vec<f32>>>,
    probabilities: Vec<Vec<f32>>,
}

#[test]
fn forward_matches_keras_in_inference_mode() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let golden: Golden = serde_json::from_str(&std::fs::read_to_string(dir.join("keras_small.json")).unwrap()).unwrap();
    let mut config = crate::small_config(0);
    let c = &golden.config;
    let get = |k: &str| c[k].as_u64().unwrap() as usize;
    config.conv1_filters = get("conv1_filters");
    config.conv1_kernel = get("conv1_kernel");
    config.conv2_filters = get("conv2_filters");
    config.conv2_kernel = get("conv2_kernel");
    config.lstm1_units = get("lstm1_units");
    config.lstm2_units = get("lstm2_units");
    config.dense_units = get("dense_units");
    let device = Device::Cpu;
    let (network, varmap) = network::build(&config, golden.n_coeffs, 8, &device).unwrap();
    ser_model::checkpoint::load_into(&varmap, &dir.join("keras_small.safetensors"), &device).unwrap();
    let input: Vec<f32> = golden.input.iter().flatten().flatten().copied().collect();
    let x = Tensor::from_vec(input, (golden.input.len(), golden.frames, golden.n_coeffs), &device).unwrap();
    let logits = network.forward_t(&x, false).unwrap();
    let probs = candle_nn::ops::softmax(&logits, D::Minus1).unwrap().to_vec2::<f32>().unwrap();
    let worst = probs
        .iter()
        .flatten()
        .zip(golden.probabilities.iter().flatten())
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    // float32 on both sides, different summation orders: agreement to 1e-5 in probability.
    assert!(worst < 1e-5, "max |ours - keras| = {worst}");
}
