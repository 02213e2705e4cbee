//! The forward pass against Keras, on fixed weights written by `tests/data/make_golden.py`
//! (the Python that produced them is in that file).

use candle_core::{D, Device, Tensor};
use ser_model::layers::{Activations, Pass};
use ser_model::network::Network;

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
    let network = Network::new(&config, golden.frames, golden.n_coeffs, 8).unwrap();
    let weights = ser_model::io::read_weights(&dir.join("keras_small.safetensors"), &network).unwrap();
    let input: Vec<f32> = golden.input.iter().flatten().flatten().copied().collect();
    let batch = golden.input.len();
    let want: Vec<f32> = golden.probabilities.iter().flatten().copied().collect();
    let worst = |probs: &[f32]| probs.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);

    // The CPU forward (what inference on CPU runs).
    let logits = network.infer_cpu(Activations::new(batch, network.input(), input.clone()), &weights).unwrap();
    let cpu: Vec<f32> = ser_model::loss::softmax(&logits, 8).into_iter().flatten().collect();
    // float32 on both sides, different summation orders: agreement to 1e-5 in probability.
    assert!(worst(&cpu) < 1e-5, "CPU forward: max |ours - keras| = {}", worst(&cpu));

    // candle's forward (what other devices run).
    let device = Device::Cpu;
    let params = ser_model::predict::tensors(&network, &weights, &device).unwrap();
    let x = Tensor::from_vec(input, (batch, golden.frames, golden.n_coeffs), &device).unwrap();
    let logits = network.forward_candle(&x, &params, &mut Pass::inference()).unwrap();
    let candle: Vec<f32> =
        candle_nn::ops::softmax(&logits, D::Minus1).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert!(worst(&candle) < 1e-5, "candle forward: max |ours - keras| = {}", worst(&candle));
}
