//! Inference on CPU runs the layers' CPU forward; it must give candle's forward to 1e-5, on the
//! production network and on small ones, with non-trivial BatchNorm statistics.

use candle_core::{D, Device, Tensor};
use ser_model::ModelConfig;
use ser_model::layers::{Activations, Pass};
use ser_model::network::Network;
use ser_model::params::Weights;
use ser_model::predict::{Model, tensors};

fn values(n: usize, seed: usize, scale: f32) -> Vec<f32> {
    (0..n).map(|i| ((((i + seed) * 2654435761) % 1000) as f32 / 500.0 - 1.0) * scale).collect()
}

/// Initial weights with BatchNorm statistics moved away from 0 and 1.
fn weights(network: &Network, seed: u64) -> Weights {
    let mut weights = network.init(seed);
    for (id, spec) in network.param_ids().zip(network.params()) {
        if spec.name.ends_with("running_mean") {
            weights.set(id, values(spec.len(), id.index(), 0.5));
        } else if spec.name.ends_with("running_var") {
            weights.set(id, values(spec.len(), id.index(), 0.4).into_iter().map(|v| v + 1.0).collect());
        }
    }
    weights
}

#[track_caller]
fn check(config: &ModelConfig, frames: usize, coeffs: usize, clips: usize) {
    let network = Network::new(config, frames, coeffs, 8).unwrap();
    let weights = weights(&network, config.seed);
    let x = values(clips * frames * coeffs, 3, 1.5);
    let params = tensors(&network, &weights, &Device::Cpu).unwrap();
    let xs = Tensor::from_vec(x.clone(), (clips, frames, coeffs), &Device::Cpu).unwrap();
    let logits = network.infer_candle(&xs, &params).unwrap();
    let candle = candle_nn::ops::softmax(&logits, D::Minus1).unwrap().to_vec2::<f32>().unwrap();
    let model = Model::new(network, weights, &Device::Cpu).unwrap();
    let cpu = model.probabilities(&x, clips).unwrap();
    assert_eq!(cpu.len(), clips);
    let worst = cpu.iter().flatten().zip(candle.iter().flatten()).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(worst < 1e-5, "{frames}x{coeffs}, {clips} clips: max |cpu - candle| = {worst}");
    for p in &cpu {
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    }
}

#[test]
fn cpu_forward_matches_candle_on_the_production_network() {
    // 37 clips: two full CPU batches and a partial one.
    check(&ModelConfig::reference(), 174, 40, 37);
}

#[test]
fn cpu_forward_matches_candle_on_small_networks() {
    let cases = [(16, (3, 3), None, None), (23, (5, 3), Some(6), Some(0.3)), (9, (3, 5), Some(2), None)];
    for (frames, kernels, attention, gender_weight) in cases {
        let mut config = crate::small_config(4);
        (config.conv1_kernel, config.conv2_kernel) = kernels;
        config.attention_units = attention;
        config.gender_weight = gender_weight;
        check(&config, frames, 6, 5);
        check(&config, frames, 6, 1);
    }
}

#[test]
fn a_clips_answer_does_not_depend_on_its_batch() {
    let network = Network::new(&crate::small_config(2), 16, 6, 8).unwrap();
    let weights = weights(&network, 2);
    let model = Model::new(network, weights, &Device::Cpu).unwrap();
    let x = values(20 * 16 * 6, 9, 1.0);
    let all = model.probabilities(&x, 20).unwrap();
    for i in [0, 7, 19] {
        let one = model.probabilities(&x[i * 96..(i + 1) * 96], 1).unwrap();
        for (a, b) in one[0].iter().zip(&all[i]) {
            assert!((a - b).abs() < 1e-6, "clip {i}: {a} alone vs {b} in a batch");
        }
    }
}

#[test]
fn with_a_gender_head_the_answer_is_the_softmax_of_the_first_outputs() {
    // The last layer gives 8 emotions, then female and male; prediction takes the emotions'.
    let config = ModelConfig { gender_weight: Some(1.0), ..crate::small_config(5) };
    let network = Network::new(&config, 16, 6, 8).unwrap();
    assert_eq!(network.heads().gender(), Some(8..10));
    let weights = weights(&network, 5);
    let x = values(3 * 16 * 6, 4, 1.0);
    let (outputs, _) =
        network.forward_cpu(Activations::new(3, network.input(), x.clone()), &weights, &mut Pass::inference()).unwrap();
    assert_eq!(outputs.values.len(), 3 * 10);
    let emotions: Vec<f32> = outputs.values.chunks_exact(10).flat_map(|row| row[..8].to_vec()).collect();
    let expected = ser_model::loss::softmax(&emotions, 8);
    let got = Model::new(network, weights, &Device::Cpu).unwrap().probabilities(&x, 3).unwrap();
    assert_eq!(got, expected);
}
