//! ONNX export: the exported graph, run by tract (a pure-Rust ONNX runtime), gives the CPU
//! forward's probabilities, for the test networks and for every pipeline's `model.yaml`.

use std::path::Path;

use candle_core::Device;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use ser_features::FeaturesConfig;
use ser_model::ModelConfig;
use ser_model::checkpoint::Normalization;
use ser_model::network::Network;
use ser_model::onnx::{self, ExportMember, ExportMeta};
use ser_model::params::Weights;
use ser_model::predict::Model;
use ser_pipeline::Stage;
use tract_onnx::prelude::*;

/// Every parameter drawn at random (the state ones, BatchNorm's running statistics, positive:
/// a variance must be), so each one reaches the output: trained weights are as arbitrary.
fn random_weights(network: &Network, seed: u64) -> Weights {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut weights = network.init(seed);
    for (id, spec) in network.param_ids().zip(network.params()) {
        let n: usize = spec.dims.iter().product();
        let values = if !spec.trained {
            (0..n).map(|_| rng.random_range(0.3..2.0)).collect()
        } else {
            (0..n).map(|_| rng.random_range(-0.6..0.6)).collect()
        };
        weights.set(id, values);
    }
    weights
}

/// Runs an ONNX model with tract on `features` (n x frames x coeffs).
pub fn tract_probabilities(model: &[u8], features: &[f32], n: usize, frames: usize, coeffs: usize) -> Vec<Vec<f32>> {
    let plan = tract_onnx::onnx()
        .model_for_read(&mut &model[..])
        .unwrap()
        .with_input_fact(0, f32::fact([n, frames, coeffs]).into())
        .unwrap()
        .into_optimized()
        .unwrap()
        .into_runnable()
        .unwrap();
    let input = tract_ndarray::Array3::from_shape_vec((n, frames, coeffs), features.to_vec()).unwrap();
    let out = plan.run(tvec!(Tensor::from(input).into())).unwrap();
    let probs = out[0].to_plain_array_view::<f32>().unwrap();
    assert_eq!(probs.shape()[0], n);
    probs.outer_iter().map(|row| row.iter().copied().collect()).collect()
}

/// The members exported with `labels`, the reference feature config and `weights_sha256` as
/// metadata.
fn export(members: &[ExportMember], labels: &[String], weights_sha256: &str) -> Vec<u8> {
    let features_config = FeaturesConfig::reference();
    let hash = features_config.hash();
    let meta = ExportMeta { labels, features_config: &features_config, features_config_hash: &hash, weights_sha256 };
    onnx::export(members, meta).unwrap()
}

#[track_caller]
fn assert_close(a: &[Vec<f32>], b: &[Vec<f32>], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}");
    let worst = a.iter().flatten().zip(b.iter().flatten()).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
    assert!(worst <= 1e-4, "{what}: probabilities differ by up to {worst}");
}

/// Exports a random-weight network of `config` and compares tract's probabilities with the CPU
/// forward's on random raw features.
fn check_config(config: &ModelConfig, frames: usize, coeffs: usize, n_classes: usize, what: &str) {
    let network = Network::new(config, frames, coeffs, n_classes).unwrap();
    let weights = random_weights(&network, 7);
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let normalization = Normalization {
        mean: (0..coeffs).map(|_| rng.random_range(-20.0..20.0)).collect(),
        std: (0..coeffs).map(|_| rng.random_range(2.0..30.0)).collect(),
    };
    let n = 3;
    let raw: Vec<f32> = (0..n * frames * coeffs)
        .map(|i| normalization.mean[i % coeffs] + normalization.std[i % coeffs] * rng.random_range(-2.0..2.0))
        .collect();
    let labels: Vec<String> = (0..n_classes).map(|i| format!("class{i}")).collect();
    let model =
        export(&[ExportMember { network: &network, weights: &weights, normalization: &normalization }], &labels, "0");
    let mut standardised = raw.clone();
    normalization.apply(&mut standardised);
    let expected = Model::new(network, weights, &Device::Cpu).unwrap().probabilities(&standardised, n).unwrap();
    assert_close(&tract_probabilities(&model, &raw, n, frames, coeffs), &expected, what);
}

#[test]
fn the_exported_graph_computes_the_cpu_forward() {
    let small = crate::small_config(1);
    check_config(&small, 16, 6, 8, "the test network");
    check_config(&ModelConfig { attention_units: Some(4), ..small.clone() }, 16, 6, 3, "with attention pooling");
    check_config(&ModelConfig { gender_weight: Some(0.5), ..small.clone() }, 16, 6, 5, "with a gender head");
    // An odd number of steps into each pool (floor), and kernels of 5 and 7.
    let odd = ModelConfig { conv1_kernel: 5, conv2_kernel: 7, ..small };
    check_config(&odd, 23, 6, 5, "odd steps, kernels 5 and 7");
}

#[test]
fn an_ensembles_graph_computes_the_mean_of_its_members() {
    // Members of different shapes, one with a gender head, each with its own standardisation.
    let (frames, coeffs, n_classes, n) = (16, 6, 4, 3);
    let small = crate::small_config(1);
    let other = ModelConfig { attention_units: Some(4), conv1_filters: 5, gender_weight: Some(0.3), ..small.clone() };
    let configs = [small, other];
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let members: Vec<(Network, Weights, Normalization)> = configs
        .iter()
        .enumerate()
        .map(|(i, config)| {
            let network = Network::new(config, frames, coeffs, n_classes).unwrap();
            let weights = random_weights(&network, 40 + i as u64);
            let normalization = Normalization {
                mean: (0..coeffs).map(|_| rng.random_range(-5.0..5.0)).collect(),
                std: (0..coeffs).map(|_| rng.random_range(1.0..4.0)).collect(),
            };
            (network, weights, normalization)
        })
        .collect();
    let raw: Vec<f32> = (0..n * frames * coeffs).map(|_| rng.random_range(-6.0..6.0)).collect();
    let labels: Vec<String> = (0..n_classes).map(|i| format!("class{i}")).collect();
    let exported: Vec<ExportMember> = members
        .iter()
        .map(|(network, weights, normalization)| ExportMember { network, weights, normalization })
        .collect();
    let bytes = export(&exported, &labels, "0");
    let alone: Vec<Vec<Vec<f32>>> = members
        .into_iter()
        .map(|(network, weights, normalization)| {
            let mut x = raw.clone();
            normalization.apply(&mut x);
            Model::new(network, weights, &Device::Cpu).unwrap().probabilities(&x, n).unwrap()
        })
        .collect();
    let mean: Vec<Vec<f32>> =
        (0..n).map(|r| (0..n_classes).map(|c| (alone[0][r][c] + alone[1][r][c]) / 2.0).collect()).collect();
    assert_close(&tract_probabilities(&bytes, &raw, n, frames, coeffs), &mean, "an ensemble of two");
    let proto = tract_onnx::onnx().proto_model_for_read(&mut &bytes[..]).unwrap();
    let graph = proto.graph.unwrap();
    assert_eq!(graph.node.iter().filter(|n| n.op_type == "Mean").count(), 1);
    assert_eq!(graph.node.iter().filter(|n| n.op_type == "LSTM").count(), 4, "each member's two BiLSTMs");
}

#[test]
fn every_pipelines_network_exports() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../pipelines");
    let names = ser_pipeline::io::pipeline_names(&root).unwrap();
    for name in &names {
        let pipeline = ser_pipeline::load(&root, name).unwrap_or_else(|e| panic!("{e}"));
        let section = |stage| &pipeline.sections[&stage];
        let config = ser_model::config::ModelConfig::from_yaml(section(Stage::Model)).unwrap();
        let features = ser_features::FeaturesConfig::from_yaml(section(Stage::Features)).unwrap();
        let frames = features.frames.expect("the pipelines pad or cut to a fixed length");
        check_config(&config, frames, features.n_coeffs(), 8, &format!("pipeline {name}"));
    }
    assert!(names.len() >= 4, "pipelines under {}", root.display());
}

#[test]
fn the_graph_declares_its_io_and_metadata() {
    let network = Network::new(&crate::small_config(1), 16, 6, 3).unwrap();
    let weights = network.init(1);
    let labels = vec!["bored".to_string(), "excited".to_string(), "frustrated".to_string()];
    let hash = FeaturesConfig::reference().hash();
    let normalization = Normalization { mean: vec![0.0; 6], std: vec![1.0; 6] };
    let bytes =
        export(&[ExportMember { network: &network, weights: &weights, normalization: &normalization }], &labels, "abc");
    let proto = tract_onnx::onnx().proto_model_for_read(&mut &bytes[..]).unwrap();
    let props: std::collections::HashMap<_, _> =
        proto.metadata_props.iter().map(|p| (p.key.as_str(), p.value.as_str())).collect();
    assert_eq!(props[onnx::keys::LABELS], r#"["bored","excited","frustrated"]"#);
    assert_eq!(props[onnx::keys::FEATURES_CONFIG_HASH], hash);
    let config: FeaturesConfig = serde_json::from_str(props[onnx::keys::FEATURES_CONFIG]).unwrap();
    assert_eq!(config.hash(), hash, "the features config round-trips");
    assert_eq!((props[onnx::keys::WEIGHTS_SHA256], props[onnx::keys::FORMAT_VERSION]), ("abc", "1"));
    assert_eq!(proto.opset_import[0].version, onnx::OPSET);
    let graph = proto.graph.unwrap();
    assert_eq!((graph.input[0].name.as_str(), graph.output[0].name.as_str()), (onnx::INPUT, onnx::OUTPUT));
    assert_eq!(graph.node.iter().filter(|n| n.op_type == "LSTM").count(), 2, "one node per BiLSTM");
    // The batch is dynamic: two clips and five run through the same file.
    let raw: Vec<f32> = (0..5 * 16 * 6).map(|i| (i % 13) as f32 * 0.1).collect();
    let five = tract_probabilities(&bytes, &raw, 5, 16, 6);
    let two = tract_probabilities(&bytes, &raw[..2 * 16 * 6], 2, 16, 6);
    assert_close(&five[..2], &two, "the first two of five vs two alone");
}
