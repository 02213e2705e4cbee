//! The network: a list of [`Layer`]s built from `model.yaml`, and the folds over that list that
//! every path uses (candle's graph, the CPU forward and backward, inference).
//!
//! The CNN + BiLSTM of the reference, on (B, T, C) standardised features:
//!
//! Conv1D(f1, k1, same) -> ReLU -> BatchNorm -> MaxPool(2) -> Dropout
//! -> Conv1D(f2, k2, same) -> ReLU -> BatchNorm -> MaxPool(2) -> Dropout
//! -> BiLSTM(u1, sequence) -> Dropout -> BiLSTM(u2, last state) -> Dropout
//! -> Dense(d) -> ReLU -> Dropout -> Dense(n_classes) (logits; softmax outside).
//!
//! With `attention_units`, the second BiLSTM gives every state and attention pooling
//! ([`AttentionPool`]) takes the place of its last state. With `gender_weight`, the last Dense
//! gives the gender logits after the emotions' ([`Heads`]): a gender head sharing every layer.
//! With an `adversary`, a training network's last Dense gives the domain logits last, their
//! gradient reversed on its way down ([`Dense::reversing`]); [`Network::for_inference`] leaves
//! them out, so checkpoints never hold them.
//!
//! Tensor names follow PyTorch (`conv1.weight` (out, in, k), `bn1.running_mean`,
//! `lstm1.weight_ih_l0_reverse`, `fc1.weight` (out, in)); they are part of the checkpoint format.

use std::ops::Range;

use candle_core::Tensor;

use crate::config::ModelConfig;
use crate::layers::{
    Activations, AttentionPool, BatchNorm, BiLstm, Conv1d, Dense, Dropout, Layer, LayerInput, LstmOutput, MaxPool,
    Pass, Relu, Saved, Shape,
};
use crate::params::{Gradients, ParamId, ParamSpec, Weights};
use crate::{Error, Result};

#[derive(Debug)]
pub struct Network {
    layers: Vec<Box<dyn Layer>>,
    params: Vec<ParamSpec>,
    input: Shape,
    heads: Heads,
}

/// What the last layer gives for a clip, in order: the logits of the emotions (the label set's
/// classes), then those of the gender head ([`ser_features::labels::GENDERS`]) when there is one,
/// then, in training, those of the adversary's domains. Training, prediction and export take the
/// heads' logits from here alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heads {
    pub classes: usize,
    /// 0 without a gender head.
    pub genders: usize,
    /// The adversary's domains (corpora or speakers of the training part); 0 without one, and
    /// always in inference.
    pub domains: usize,
}

impl Heads {
    /// The heads `config` asks for, over `n_classes` emotions and `domains` adversary domains.
    pub fn new(config: &ModelConfig, n_classes: usize, domains: usize) -> Heads {
        let genders = if config.gender_weight.is_some() { ser_features::labels::GENDERS.len() } else { 0 };
        Heads { classes: n_classes, genders, domains }
    }

    /// Values the last layer gives per clip.
    pub fn outputs(self) -> usize {
        self.classes + self.genders + self.domains
    }

    /// Where a clip's emotion logits are in its outputs.
    pub fn emotion(self) -> Range<usize> {
        0..self.classes
    }

    /// Where a clip's gender logits are, with a gender head.
    pub fn gender(self) -> Option<Range<usize>> {
        (self.genders > 0).then(|| self.classes..self.classes + self.genders)
    }

    /// Where a clip's domain logits are, with an adversary.
    pub fn domain(self) -> Option<Range<usize>> {
        (self.domains > 0).then(|| self.outputs() - self.domains..self.outputs())
    }

    /// Whether the emotions' logits are all the last layer gives (no other head).
    pub fn emotions_only(self) -> bool {
        self.outputs() == self.classes
    }

    /// The emotion logits (B, classes) of the outputs (B, outputs).
    pub fn emotion_logits(self, outputs: Vec<f32>) -> Vec<f32> {
        if self.emotions_only() {
            return outputs;
        }
        outputs.chunks_exact(self.outputs()).flat_map(|row| &row[self.emotion()]).copied().collect()
    }
}

/// Builds a network layer by layer, each layer seeing the shape the previous one gives.
struct Builder {
    layers: Vec<Box<dyn Layer>>,
    params: Vec<ParamSpec>,
    input: Shape,
    shape: Shape,
}

impl Builder {
    fn add<L: Layer + 'static>(&mut self, make: impl FnOnce(&mut LayerInput) -> Result<L>) -> Result<()> {
        let layer = make(&mut LayerInput::new(self.shape, &mut self.params))?;
        self.shape = layer.output_shape(self.shape);
        self.layers.push(Box::new(layer));
        Ok(())
    }
}

impl Network {
    /// The network of `config` for clips of `n_frames` x `n_coeffs` and `n_classes` classes, as
    /// a checkpoint holds it (no adversary).
    pub fn new(config: &ModelConfig, n_frames: usize, n_coeffs: usize, n_classes: usize) -> Result<Network> {
        Network::training(config, n_frames, n_coeffs, n_classes, 0)
    }

    /// The network trained for `config`: with `config.adversary`, its last Dense also gives the
    /// logits of `domains` domains, their gradient reversed below it.
    pub fn training(
        config: &ModelConfig,
        n_frames: usize,
        n_coeffs: usize,
        n_classes: usize,
        domains: usize,
    ) -> Result<Network> {
        let domains = if config.adversary.is_some() { domains } else { 0 };
        let input = Shape::Sequence { steps: n_frames, features: n_coeffs };
        let mut b = Builder { layers: Vec::new(), params: Vec::new(), input, shape: input };
        let convs = [(config.conv1_filters, config.conv1_kernel), (config.conv2_filters, config.conv2_kernel)];
        for (i, (filters, kernel)) in (1..).zip(convs) {
            b.add(|x| Conv1d::new(x, &format!("conv{i}"), filters, kernel))?;
            b.add(|_| Ok(Relu))?;
            b.add(|x| BatchNorm::new(x, &format!("bn{i}")))?;
            b.add(|x| MaxPool::new(x, 2))?;
            b.add(|_| Ok(Dropout::new(config.dropout_conv)))?;
        }
        b.add(|x| BiLstm::new(x, "lstm1", config.lstm1_units, LstmOutput::Sequence))?;
        b.add(|_| Ok(Dropout::new(config.dropout_lstm)))?;
        match config.attention_units {
            None => b.add(|x| BiLstm::new(x, "lstm2", config.lstm2_units, LstmOutput::Last))?,
            Some(units) => {
                b.add(|x| BiLstm::new(x, "lstm2", config.lstm2_units, LstmOutput::Sequence))?;
                b.add(|x| AttentionPool::new(x, "attention", units))?;
            }
        }
        b.add(|_| Ok(Dropout::new(config.dropout_lstm)))?;
        b.add(|x| Dense::new(x, "fc1", config.dense_units))?;
        b.add(|_| Ok(Relu))?;
        b.add(|_| Ok(Dropout::new(config.dropout_dense)))?;
        let heads = Heads::new(config, n_classes, domains);
        b.add(|x| Ok(Dense::new(x, "fc2", heads.outputs())?.reversing(heads.outputs() - heads.domains)))?;
        Ok(Network { layers: b.layers, params: b.params, input: b.input, heads })
    }

    /// The network a checkpoint holds, and its `weights`: without the adversary's domain
    /// logits (the last rows of the last Dense, its only parameters that differ), as they are
    /// when there is no adversary.
    pub fn for_inference(&self, config: &ModelConfig, weights: &Weights) -> Result<(Network, Weights)> {
        let Shape::Sequence { steps, features } = self.input else { unreachable!("the input is a sequence") };
        let network = Network::new(config, steps, features, self.heads.classes)?;
        let values = network
            .params
            .iter()
            .zip(weights.values())
            // Row-major (out, in) and (out): the kept outputs are the leading values.
            .map(|(spec, values)| values[..spec.len()].to_vec())
            .collect();
        let weights = Weights::from_values(&network.params, values).map_err(Error::Config)?;
        Ok((network, weights))
    }

    /// Every parameter, in the order [`Weights`] and [`Gradients`] use.
    pub fn params(&self) -> &[ParamSpec] {
        &self.params
    }

    pub fn param_ids(&self) -> impl Iterator<Item = ParamId> + '_ {
        (0..self.params.len()).map(ParamId)
    }

    /// A clip's input shape.
    pub fn input(&self) -> Shape {
        self.input
    }

    /// The emotion classes.
    pub fn n_classes(&self) -> usize {
        self.heads.classes
    }

    /// What the last layer gives: the emotions, and the gender head's logits if it has one.
    pub fn heads(&self) -> Heads {
        self.heads
    }

    /// Fresh weights, drawn from `seed`.
    pub fn init(&self, seed: u64) -> Weights {
        Weights::initial(&self.params, seed)
    }

    /// Every head's logits (B, [`Heads::outputs`]) through candle, on the device of `xs` (B, T, C)
    /// and `params`.
    pub fn forward_candle(
        &self,
        xs: &Tensor,
        params: &[Tensor],
        pass: &mut Pass<Tensor>,
    ) -> candle_core::Result<Tensor> {
        self.layers.iter().try_fold(xs.clone(), |x, layer| layer.forward_candle(&x, params, pass))
    }

    fn check_input(&self, x: &Activations) -> Result<()> {
        if x.shape != self.input {
            return Err(Error::Data(format!("clips are {:?}, the network takes {:?}", x.shape, self.input)));
        }
        Ok(())
    }

    /// Every head's logits (B, [`Heads::outputs`]) on the CPU, and in training what the backward
    /// pass needs.
    pub fn forward_cpu(
        &self,
        x: Activations,
        weights: &Weights,
        pass: &mut Pass<Vec<f32>>,
    ) -> Result<(Activations, Vec<Saved>)> {
        self.check_input(&x)?;
        let mut saved = Vec::with_capacity(self.layers.len());
        let mut act = x;
        for layer in &self.layers {
            let (out, s) = layer.forward_cpu(act, weights, pass);
            saved.push(s);
            act = out;
        }
        Ok((act, saved))
    }

    /// The gradient of every trained parameter from the gradient of every head's logits.
    pub fn backward_cpu(&self, saved: Vec<Saved>, d_logits: Vec<f32>, weights: &Weights) -> Gradients {
        let mut grads = Gradients::new(self.params.len());
        let mut d = d_logits;
        for (i, (layer, s)) in self.layers.iter().zip(saved).enumerate().rev() {
            match layer.backward_cpu(s, d, weights, &mut grads, i > 0) {
                Some(d_in) => d = d_in,
                None => break,
            }
        }
        grads
    }

    /// Writes the inference forward into an ONNX graph, layer by layer, from the value named
    /// `input` (B, T, C); returns the name of the emotion logits (B, n_classes).
    pub fn export_onnx(&self, graph: &mut crate::graph::Graph, input: &str, weights: &Weights) -> Result<String> {
        let mut shape = self.input;
        let mut x = input.to_string();
        for layer in &self.layers {
            x = layer.export_onnx(graph, &x, shape, weights)?;
            shape = layer.output_shape(shape);
        }
        if !self.heads.emotions_only() {
            let range = self.heads.emotion();
            let starts = graph.constant_i64("heads_starts", &[range.start as i64]);
            let ends = graph.constant_i64("heads_ends", &[range.end as i64]);
            let axes = graph.constant_i64("heads_axes", &[1]);
            x = graph.node("Slice", &[&x, &starts, &ends, &axes], vec![]);
        }
        Ok(x)
    }

    /// Emotion logits (B, n_classes) on the CPU in inference mode.
    pub fn infer_cpu(&self, x: Activations, weights: &Weights) -> Result<Vec<f32>> {
        Ok(self.heads.emotion_logits(self.forward_cpu(x, weights, &mut Pass::inference())?.0.values))
    }

    /// Emotion logits (B, n_classes) through candle in inference mode.
    pub fn infer_candle(&self, xs: &Tensor, params: &[Tensor]) -> candle_core::Result<Tensor> {
        let outputs = self.forward_candle(xs, params, &mut Pass::inference())?;
        if self.heads.emotions_only() {
            return Ok(outputs);
        }
        let range = self.heads.emotion();
        outputs.narrow(1, range.start, range.len())
    }
}
