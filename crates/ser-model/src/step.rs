//! One training step of the network on a batch, by either engine: the loss, the logits, the
//! gradient of every trained parameter and the new state (BatchNorm statistics). The training
//! loop applies the gradients with [`crate::optim::Adam`]; both engines share the network's
//! layers, the loss and the dropout masks, so they compute the same step.
//!
//! - `fused`: the hand-written CPU forward and backward of every layer, no autograd graph. On CPU
//!   it is several times faster than candle's autograd, which builds a few hundred small tensors
//!   per batch and computes gradients nobody asked for.
//! - `candle`: the layers' candle forward and candle's autograd, on any device (a GPU).

use candle_core::{Device, Tensor, Var};
use serde::{Deserialize, Serialize};

use crate::layers::{Activations, MaskStream, Pass};
use crate::loss::Loss;
use crate::network::Network;
use crate::params::{Gradients, ParamId, Weights};
use crate::{Error, Result};

/// How a training step is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Engine {
    /// The hand-written CPU pass (CPU only).
    Fused,
    /// candle's graph and autograd (any device).
    Candle,
}

impl Engine {
    /// `fused` on the CPU, `candle` elsewhere.
    pub fn default_for(device: &Device) -> Engine {
        if device.is_cpu() { Engine::Fused } else { Engine::Candle }
    }

    pub fn check(self, device: &Device) -> Result<()> {
        if self == Engine::Fused && !device.is_cpu() {
            return Err(Error::Config(format!("engine fused runs on the CPU only; use engine candle on {device:?}")));
        }
        Ok(())
    }
}

/// What one step computed.
#[derive(Debug)]
pub struct StepOutcome {
    pub loss: f32,
    /// Every head's logits (B, [`crate::network::Heads::outputs`]).
    pub logits: Vec<f32>,
    pub grads: Gradients,
    /// New values of state parameters.
    pub state: Vec<(ParamId, Vec<f32>)>,
}

/// One training step on `x` (B, T, C), standardised and augmented, drawing dropout masks from
/// `masks`.
pub fn train_step(
    engine: Engine,
    network: &Network,
    weights: &Weights,
    x: Activations,
    loss: &Loss,
    masks: &mut MaskStream,
    device: &Device,
) -> Result<StepOutcome> {
    match engine {
        Engine::Fused => {
            let mut pass = Pass::training(masks);
            let (logits, saved) = network.forward_cpu(x, weights, &mut pass)?;
            let (loss_value, d_logits) = loss.value_and_gradient(&logits.values, network.heads());
            let grads = network.backward_cpu(saved, d_logits, weights);
            Ok(StepOutcome { loss: loss_value, logits: logits.values, grads, state: pass.into_state() })
        }
        Engine::Candle => candle_step(network, weights, x, loss, Pass::training(masks), device)
            .map_err(|e| Error::Train(e.to_string())),
    }
}

fn candle_step(
    network: &Network,
    weights: &Weights,
    x: Activations,
    loss: &Loss,
    mut pass: Pass<Tensor>,
    device: &Device,
) -> candle_core::Result<StepOutcome> {
    let vars: Vec<Var> = network
        .params()
        .iter()
        .zip(weights.values())
        .map(|(spec, values)| Var::from_slice(values, spec.dims.as_slice(), device))
        .collect::<candle_core::Result<_>>()?;
    let params: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let xs = Tensor::from_vec(x.values, x.shape.dims(x.batch), device)?;
    let logits = network.forward_candle(&xs, &params, &mut pass)?;
    let logits_values = logits.flatten_all()?.to_vec1::<f32>()?;
    let (loss_value, d_logits) = loss.value_and_gradient(&logits_values, network.heads());
    // d(sum(logits * g))/d(logits) = g: candle carries the loss's own gradient through the graph.
    let surrogate = (&logits * Tensor::from_vec(d_logits, logits.shape(), device)?)?.sum_all()?;
    let candle_grads = surrogate.backward()?;
    let mut grads = Gradients::new(network.params().len());
    for ((id, spec), var) in network.param_ids().zip(network.params()).zip(&vars) {
        if spec.trained
            && let Some(g) = candle_grads.get(var)
        {
            grads.set(id, g.flatten_all()?.to_vec1::<f32>()?);
        }
    }
    let state = pass
        .into_state()
        .into_iter()
        .map(|(id, t)| Ok((id, t.flatten_all()?.to_vec1::<f32>()?)))
        .collect::<candle_core::Result<_>>()?;
    Ok(StepOutcome { loss: loss_value, logits: logits_values, grads, state })
}
