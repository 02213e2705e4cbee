//! The layers of the network. Each layer is one type that holds its whole truth: the parameters
//! it registers while the network is built (names, shapes, initialisation), its candle forward
//! (inference on any device, and training through candle's autograd on a GPU) and its CPU forward
//! and backward (the hand-written training step, and fast inference on CPU).
//!
//! Activations are row-major with the batch first: a sequence is (B, T, F), a vector (B, F), on
//! the CPU ([`Activations`]) and in candle alike. A CPU forward in training returns what its
//! backward needs ([`Saved`], like PyTorch's `ctx.save_for_backward`); dropout masks and state
//! updates go through the [`Pass`], so both paths draw the same masks in the same order.

mod attention;
mod batch_norm;
mod bilstm;
mod conv;
mod dense;
mod dropout;
mod pool;
pub mod recurrence;
mod relu;

use std::any::Any;

use candle_core::Tensor;

pub use attention::AttentionPool;
pub use batch_norm::BatchNorm;
pub use bilstm::{BiLstm, LstmOutput};
pub use conv::Conv1d;
pub use dense::Dense;
pub use dropout::{Dropout, MaskStream};
pub use pool::MaxPool;
pub use relu::Relu;

use crate::graph::Graph;
use crate::params::{Gradients, Init, ParamId, ParamSpec, Weights};
use crate::{Error, Result};

/// The shape of one clip's activations (the batch comes before it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `steps x features`, row-major.
    Sequence {
        steps: usize,
        features: usize,
    },
    Vector {
        features: usize,
    },
}

impl Shape {
    pub fn features(self) -> usize {
        match self {
            Shape::Sequence { features, .. } | Shape::Vector { features } => features,
        }
    }

    /// Steps per clip: 1 for a vector.
    pub fn steps(self) -> usize {
        match self {
            Shape::Sequence { steps, .. } => steps,
            Shape::Vector { .. } => 1,
        }
    }

    /// Values per clip.
    pub fn len(self) -> usize {
        self.steps() * self.features()
    }

    pub fn is_empty(self) -> bool {
        self.len() == 0
    }

    /// candle's dims for `batch` clips: (B, T, F) or (B, F).
    pub fn dims(self, batch: usize) -> Vec<usize> {
        match self {
            Shape::Sequence { steps, features } => vec![batch, steps, features],
            Shape::Vector { features } => vec![batch, features],
        }
    }
}

/// A batch of activations on the CPU, row-major with the batch first.
#[derive(Debug, Clone, PartialEq)]
pub struct Activations {
    pub batch: usize,
    pub shape: Shape,
    pub values: Vec<f32>,
}

impl Activations {
    pub fn new(batch: usize, shape: Shape, values: Vec<f32>) -> Activations {
        assert_eq!(values.len(), batch * shape.len(), "{batch} clips of {shape:?}");
        Activations { batch, shape, values }
    }

    /// Rows of `features` values: B T for a sequence, B for a vector.
    pub fn rows(&self) -> usize {
        self.batch * self.shape.steps()
    }
}

/// What a CPU forward in training keeps for its backward (nothing in inference).
pub type Saved = Box<dyn Any + Send>;

/// One forward pass: training or inference, the dropout masks of a training pass, and the new
/// values of state parameters it computed (`S` is `Vec<f32>` on the CPU, `Tensor` in candle).
pub struct Pass<'a, S> {
    masks: Option<&'a mut MaskStream>,
    state: Vec<(ParamId, S)>,
}

impl<'a, S> Pass<'a, S> {
    pub fn inference() -> Pass<'a, S> {
        Pass { masks: None, state: Vec::new() }
    }

    /// A training pass drawing its dropout masks from `masks`.
    pub fn training(masks: &'a mut MaskStream) -> Pass<'a, S> {
        Pass { masks: Some(masks), state: Vec::new() }
    }

    pub fn is_training(&self) -> bool {
        self.masks.is_some()
    }

    /// The next inverted-dropout mask of `n` values in training, `None` in inference or when `p`
    /// is 0 (nothing is drawn).
    pub fn mask(&mut self, n: usize, p: f32) -> Option<Vec<f32>> {
        self.masks.as_deref_mut().and_then(|m| m.mask(n, p))
    }

    /// What a training forward keeps for its backward: `keep()` in training, nothing (and
    /// `keep` not called) in inference.
    pub fn save<T: Send + 'static>(&self, keep: impl FnOnce() -> T) -> Saved {
        if self.is_training() { Box::new(keep()) } else { Box::new(()) }
    }

    /// Records the new value of a state parameter (applied after the step).
    pub fn update_state(&mut self, id: ParamId, value: S) {
        self.state.push((id, value));
    }

    pub fn into_state(self) -> Vec<(ParamId, S)> {
        self.state
    }
}

/// One layer of the network.
pub trait Layer: std::fmt::Debug + Send + Sync {
    /// The output shape for an input of `input` (which the layer accepted when it was built).
    fn output_shape(&self, input: Shape) -> Shape;

    /// The forward pass in candle: `xs` with [`Shape::dims`], `params` indexed by [`ParamId`].
    fn forward_candle(&self, xs: &Tensor, params: &[Tensor], pass: &mut Pass<Tensor>) -> candle_core::Result<Tensor>;

    /// The forward pass on the CPU; in training, also what [`Layer::backward_cpu`] needs.
    fn forward_cpu(&self, x: Activations, weights: &Weights, pass: &mut Pass<Vec<f32>>) -> (Activations, Saved);

    /// The backward pass on the CPU from the gradient of the output (same layout as the output):
    /// sets the gradients of the layer's trained parameters and returns the input's gradient when
    /// `input_grad` (the first layer's is not needed).
    fn backward_cpu(
        &self,
        saved: Saved,
        d_out: Vec<f32>,
        weights: &Weights,
        grads: &mut Gradients,
        input_grad: bool,
    ) -> Option<Vec<f32>>;

    /// Writes the layer's inference forward into an ONNX graph: `x` names the input (batch
    /// first, [`Shape::dims`] of `input`); returns the name of the output. What the graph cannot
    /// express is an error, never a different computation.
    fn export_onnx(&self, graph: &mut Graph, x: &str, input: Shape, weights: &Weights) -> Result<String>;
}

/// Takes back what a layer's training forward saved.
fn unsave<T: 'static>(saved: Saved) -> T {
    *saved.downcast::<T>().expect("backward_cpu gets what its own forward_cpu saved in training")
}

/// What a layer sees while the network is built: the shape it receives, and the network's
/// parameter list to register its parameters in.
pub struct LayerInput<'a> {
    shape: Shape,
    params: &'a mut Vec<ParamSpec>,
}

impl<'a> LayerInput<'a> {
    pub(crate) fn new(shape: Shape, params: &'a mut Vec<ParamSpec>) -> LayerInput<'a> {
        LayerInput { shape, params }
    }

    pub fn shape(&self) -> Shape {
        self.shape
    }

    /// `(steps, features)`, or an error saying that `layer` needs a sequence.
    pub fn sequence(&self, layer: &str) -> Result<(usize, usize)> {
        match self.shape {
            Shape::Sequence { steps, features } => Ok((steps, features)),
            Shape::Vector { .. } => Err(Error::Config(format!("{layer}: needs a sequence, gets {:?}", self.shape))),
        }
    }

    /// Registers a trained parameter.
    pub fn param(&mut self, name: String, dims: Vec<usize>, init: Init) -> ParamId {
        self.push(ParamSpec { name, dims, init, trained: true })
    }

    /// Registers a state parameter (updated by the forward pass, not by gradient).
    pub fn state(&mut self, name: String, dims: Vec<usize>, init: Init) -> ParamId {
        self.push(ParamSpec { name, dims, init, trained: false })
    }

    fn push(&mut self, spec: ParamSpec) -> ParamId {
        self.params.push(spec);
        ParamId(self.params.len() - 1)
    }
}
