//! The two training engines compute the same step: the hand-written CPU pass (`fused`) against
//! candle's graph and autograd (`candle`), through `step::train_step` and so through the loss
//! training uses, with the same weights, batch and dropout masks. Loss, logits, every gradient
//! and the BatchNorm statistics must agree, on a grid of shapes.

use candle_core::Device;
use ser_model::layers::{Activations, MaskStream};
use ser_model::loss::Loss;
use ser_model::network::Network;
use ser_model::step::{Engine, StepOutcome, train_step};

fn values(n: usize, seed: usize) -> Vec<f32> {
    (0..n).map(|i| ((((i + seed) * 2654435761) % 1000) as f32 / 500.0 - 1.0) * 1.5).collect()
}

#[track_caller]
fn assert_close(fused: &[f32], candle: &[f32], what: &str) {
    assert_eq!(fused.len(), candle.len(), "{what}: lengths");
    let scale = candle.iter().fold(1e-3f32, |m, v| m.max(v.abs()));
    for (i, (x, y)) in fused.iter().zip(candle).enumerate() {
        assert!((x - y).abs() <= 2e-4 * scale, "{what}[{i}]: fused {x} vs candle {y} (scale {scale})");
    }
}

#[derive(Debug, Clone, Copy)]
struct Case {
    kernels: (usize, usize),
    frames: usize,
    batch: usize,
    dropout: bool,
    /// Class weights, label smoothing and a mixup partner term.
    weighted_mixup: bool,
    /// Attention pooling instead of the last LSTM state.
    attention: bool,
    /// A gender head, its loss over the clips with a gender (some have none).
    gender: bool,
}

#[track_caller]
fn check(case: Case) {
    let mut config = crate::small_config(9);
    (config.conv1_kernel, config.conv2_kernel) = case.kernels;
    config.attention_units = case.attention.then_some(5);
    config.gender_weight = case.gender.then_some(0.4);
    let p = if case.dropout { 0.3 } else { 0.0 };
    (config.dropout_conv, config.dropout_lstm, config.dropout_dense) = (p, p, p);
    let (coeffs, n_classes) = (7, 8);
    let network = Network::new(&config, case.frames, coeffs, n_classes).unwrap();
    let weights = network.init(config.seed);
    let x = values(case.batch * case.frames * coeffs, case.frames + case.batch);
    let own: Vec<u32> = (0..case.batch).map(|i| (i * 3 % n_classes) as u32).collect();
    let other: Vec<u32> = (0..case.batch).map(|i| ((i * 5 + 1) % n_classes) as u32).collect();
    let class_weights = [0.5, 1.0, 2.0, 1.5, 0.8, 1.2, 0.9, 3.0];
    let genders = |k: usize| (0..case.batch).map(|i| (i % 3 != k).then_some(((i + k) % 2) as u32)).collect();
    // Two corpora, the second without class 7 (nor the classes `own` and `other` never name).
    let (all, no7) = (vec![true; n_classes], (0..n_classes).map(|c| c != 7).collect::<Vec<_>>());
    let corpus = |i: usize, t: &[u32]| if t[i] != 7 && i % 2 == 1 { &no7[..] } else { &all[..] };
    let mut loss = if case.weighted_mixup {
        Loss {
            allowed: Some([&own, &other].iter().map(|t| (0..case.batch).map(|i| corpus(i, t)).collect()).collect()),
            clip_weights: Some(vec![(0..case.batch).map(|i| 0.5 + (i % 3) as f32 * 0.5).collect(); 2]),
            terms: vec![(0.7, own.clone()), (0.3, other.clone())],
            class_weights: Some(&class_weights),
            smoothing: 0.1,
            gender: None,
            domain: None,
        }
    } else {
        Loss {
            terms: vec![(1.0, own)],
            class_weights: None,
            clip_weights: None,
            allowed: None,
            smoothing: 0.0,
            gender: None,
            domain: None,
        }
    };
    if case.gender {
        loss.gender = Some((0.4, (0..loss.terms.len()).map(genders).collect()));
    }
    let step = |engine: Engine| -> StepOutcome {
        let batch = Activations::new(case.batch, network.input(), x.clone());
        train_step(engine, &network, &weights, batch, &loss, &mut MaskStream::new(77), &Device::Cpu).unwrap()
    };
    let (fused, candle) = (step(Engine::Fused), step(Engine::Candle));
    assert!((fused.loss - candle.loss).abs() < 1e-5, "{case:?}: loss {} vs {}", fused.loss, candle.loss);
    assert_close(&fused.logits, &candle.logits, "logits");
    let mut trained = 0;
    for (id, spec) in network.param_ids().zip(network.params()) {
        let what = format!("{case:?} {}", spec.name);
        if spec.trained {
            let f = fused.grads.get(id).unwrap_or_else(|| panic!("{what}: no fused gradient"));
            let c = candle.grads.get(id).unwrap_or_else(|| panic!("{what}: no candle gradient"));
            assert_close(f, c, &what);
            trained += 1;
        } else {
            assert!(fused.grads.get(id).is_none() && candle.grads.get(id).is_none(), "{what}: state has no gradient");
        }
    }
    assert_eq!(trained, network.params().iter().filter(|s| s.trained).count());
    assert_eq!(fused.state.len(), 4, "both BatchNorms update both statistics");
    assert_eq!(
        fused.state.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        candle.state.iter().map(|(id, _)| *id).collect::<Vec<_>>()
    );
    for ((id, f), (_, c)) in fused.state.iter().zip(&candle.state) {
        assert_close(f, c, &format!("{case:?} state {}", network.params()[id.index()].name));
    }
}

#[test]
fn the_engines_agree_on_a_grid_of_shapes() {
    let mut cases = 0;
    for kernels in [(3, 5), (5, 3)] {
        for frames in [16, 23] {
            for batch in [1, 16] {
                for dropout in [false, true] {
                    for weighted_mixup in [false, true] {
                        check(Case {
                            kernels,
                            frames,
                            batch,
                            dropout,
                            weighted_mixup,
                            attention: weighted_mixup && dropout,
                            gender: frames == 23 && (weighted_mixup || batch == 16),
                        });
                        cases += 1;
                    }
                }
            }
        }
    }
    assert_eq!(cases, 32);
}

#[test]
fn the_production_shape_agrees() {
    // The ravdess recipe's network on its 174 x 40 input, batch 16 (kernels 5 then 3).
    let config = ser_model::ModelConfig::reference();
    let network = Network::new(&config, 174, 40, 8).unwrap();
    let weights = network.init(3);
    let x = values(16 * 174 * 40, 1);
    let loss = Loss {
        terms: vec![(1.0, (0..16).map(|i| (i % 8) as u32).collect())],
        class_weights: None,
        clip_weights: None,
        allowed: None,
        smoothing: 0.0,
        gender: None,
        domain: None,
    };
    let step = |engine: Engine| {
        let batch = Activations::new(16, network.input(), x.clone());
        train_step(engine, &network, &weights, batch, &loss, &mut MaskStream::new(5), &Device::Cpu).unwrap()
    };
    let (fused, candle) = (step(Engine::Fused), step(Engine::Candle));
    assert!((fused.loss - candle.loss).abs() < 1e-5, "loss {} vs {}", fused.loss, candle.loss);
    for (id, spec) in network.param_ids().zip(network.params()).filter(|(_, s)| s.trained) {
        assert_close(fused.grads.get(id).unwrap(), candle.grads.get(id).unwrap(), &spec.name);
    }
}

/// The adversary's head learns to tell the domains apart (its own rows descend its loss), while
/// every layer below receives that loss's gradient reversed: against central differences of
/// the whole loss, a parameter of the head gets `d(emotions + domains)`, one below it
/// `d(emotions) - d(domains)`.
#[test]
fn the_adversary_s_gradient_is_reversed_below_its_head() {
    use ser_model::config::{Adversary, Domain};
    let mut config = crate::small_config(4);
    (config.dropout_conv, config.dropout_lstm, config.dropout_dense) = (0.0, 0.0, 0.0);
    config.adversary = Some(Adversary { against: Domain::Corpus, weight: 0.7 });
    let (frames, coeffs, n_classes, batch) = (12, 5, 4, 6);
    let network = Network::training(&config, frames, coeffs, n_classes, 3).unwrap();
    assert_eq!(network.heads().domain(), Some(4..7));
    let weights = network.init(config.seed);
    let x = values(batch * frames * coeffs, 3);
    let with_domains = |on: bool| Loss {
        terms: vec![(1.0, (0..batch).map(|i| (i % n_classes) as u32).collect())],
        class_weights: None,
        clip_weights: None,
        allowed: None,
        smoothing: 0.0,
        gender: None,
        domain: on.then(|| (0.7, vec![(0..batch).map(|i| Some((i % 3) as u32)).collect()])),
    };
    let step = |weights: &ser_model::params::Weights, loss: &Loss| {
        let b = Activations::new(batch, network.input(), x.clone());
        train_step(Engine::Fused, &network, weights, b, loss, &mut MaskStream::new(1), &Device::Cpu).unwrap()
    };
    let (full, emotions) = (step(&weights, &with_domains(true)), step(&weights, &with_domains(false)));
    let id = |name: &str| network.param_ids().find(|&id| network.params()[id.index()].name == name).unwrap();
    let h = 1e-2f32;
    for (name, reversed) in [("fc2.weight", false), ("fc2.bias", false), ("fc1.bias", true), ("fc1.weight", true)] {
        let id = id(name);
        for k in [0, 1] {
            let at = |d: f32| {
                let mut w = weights.clone();
                w.get_mut(id)[k] += d;
                step(&w, &with_domains(true)).loss
            };
            let numeric = (at(h) - at(-h)) / (2.0 * h);
            let (got, own) = (full.grads.get(id).unwrap()[k], emotions.grads.get(id).unwrap()[k]);
            // Reversed: got = own - (numeric - own).
            let want = if reversed { 2.0 * own - numeric } else { numeric };
            assert!((got - want).abs() < 2e-3 + 2e-2 * want.abs(), "{name}[{k}]: {got} vs {want} (emotions {own})");
        }
    }
    // Between the two engines, with an adversary, as for every other head.
    let candle = train_step(
        Engine::Candle,
        &network,
        &weights,
        Activations::new(batch, network.input(), x.clone()),
        &with_domains(true),
        &mut MaskStream::new(1),
        &Device::Cpu,
    )
    .unwrap();
    for (id, spec) in network.param_ids().zip(network.params()).filter(|(_, s)| s.trained) {
        assert_close(full.grads.get(id).unwrap(), candle.grads.get(id).unwrap(), &spec.name);
    }
}
