//! A network's parameters: what each is ([`ParamSpec`]: name, shape, initialisation, trained or
//! state), their values on the CPU ([`Weights`], the one store every path reads) and their
//! gradients ([`Gradients`]). Layers register their parameters while the network is built and get
//! back a [`ParamId`]; nothing else spells a parameter's name.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};

/// A parameter's place in its network's parameter list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParamId(pub(crate) usize);

impl ParamId {
    pub fn index(self) -> usize {
        self.0
    }
}

/// How a parameter starts (Keras's initialisers), drawn from a generator seeded by
/// `(seed, parameter name)`: the same seed gives the same values whatever the parameter order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Init {
    Zeros,
    Ones,
    /// Uniform in `±sqrt(6 / (fan_in + fan_out))`.
    GlorotUniform {
        fan_in: usize,
        fan_out: usize,
    },
    /// A (rows, cols) matrix with orthonormal columns (Keras's recurrent kernel initialiser).
    Orthogonal,
    /// An LSTM input bias (gates i, f, g, o): 1 for the forget gate, 0 elsewhere.
    ForgetGateOnes,
}

/// One parameter of a network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamSpec {
    /// The tensor name in the checkpoint (part of the format).
    pub name: String,
    pub dims: Vec<usize>,
    pub init: Init,
    /// Trained by gradient; `false` for state a forward pass updates (BatchNorm's statistics).
    pub trained: bool,
}

impl ParamSpec {
    pub fn len(&self) -> usize {
        self.dims.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The initial values for `seed`.
    pub fn initial_values(&self, seed: u64) -> Vec<f32> {
        let n = self.len();
        let digest = Sha256::digest(self.name.as_bytes());
        let name_seed = u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"));
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ name_seed);
        match self.init {
            Init::Zeros => vec![0.0; n],
            Init::Ones => vec![1.0; n],
            Init::ForgetGateOnes => {
                let hidden = n / 4;
                (0..n).map(|i| if (hidden..2 * hidden).contains(&i) { 1.0 } else { 0.0 }).collect()
            }
            Init::Orthogonal => orthogonal(self.dims[0], self.dims[1], &mut rng),
            Init::GlorotUniform { fan_in, fan_out } => {
                let limit = (6.0 / (fan_in + fan_out) as f64).sqrt() as f32;
                (0..n).map(|_| rng.random_range(-limit..=limit)).collect()
            }
        }
    }
}

/// A (rows, cols) matrix with orthonormal columns (rows >= cols) or rows, as Keras's Orthogonal
/// initialiser gives for the transposed recurrent kernel.
fn orthogonal(rows: usize, cols: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
    let normal = |rng: &mut ChaCha8Rng| -> f64 {
        // Box-Muller
        let (u1, u2): (f64, f64) = (rng.random::<f64>().max(1e-300), rng.random());
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    };
    let (tall, short) = (rows.max(cols), rows.min(cols));
    let mut basis: Vec<Vec<f64>> = Vec::with_capacity(short);
    while basis.len() < short {
        let mut v: Vec<f64> = (0..tall).map(|_| normal(rng)).collect();
        for _ in 0..2 {
            for b in &basis {
                let proj: f64 = v.iter().zip(b).map(|(x, y)| x * y).sum();
                for (x, y) in v.iter_mut().zip(b) {
                    *x -= proj * y;
                }
            }
        }
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        if norm > 1e-6 {
            basis.push(v.into_iter().map(|x| x / norm).collect());
        }
    }
    let mut out = vec![0f32; rows * cols];
    for r in 0..rows {
        for c in 0..cols {
            out[r * cols + c] = if rows >= cols { basis[c][r] } else { basis[r][c] } as f32;
        }
    }
    out
}

/// The values of every parameter of a network, in its parameter order, flattened row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Weights {
    values: Vec<Vec<f32>>,
}

impl Weights {
    /// Fresh values for `specs` from `seed`.
    pub fn initial(specs: &[ParamSpec], seed: u64) -> Weights {
        Weights { values: specs.iter().map(|s| s.initial_values(seed)).collect() }
    }

    /// Values in parameter order; each must have its parameter's length.
    pub fn from_values(specs: &[ParamSpec], values: Vec<Vec<f32>>) -> std::result::Result<Weights, String> {
        if values.len() != specs.len() {
            return Err(format!("{} tensors for {} parameters", values.len(), specs.len()));
        }
        for (spec, v) in specs.iter().zip(&values) {
            if v.len() != spec.len() {
                return Err(format!("tensor `{}` has {} values, expected {:?}", spec.name, v.len(), spec.dims));
            }
        }
        Ok(Weights { values })
    }

    pub fn get(&self, id: ParamId) -> &[f32] {
        &self.values[id.0]
    }

    pub fn get_mut(&mut self, id: ParamId) -> &mut [f32] {
        &mut self.values[id.0]
    }

    pub fn set(&mut self, id: ParamId, values: Vec<f32>) {
        assert_eq!(values.len(), self.values[id.0].len(), "parameter {} keeps its length", id.0);
        self.values[id.0] = values;
    }

    /// Every parameter's values, in parameter order.
    pub fn values(&self) -> &[Vec<f32>] {
        &self.values
    }

    /// Every parameter's values, in parameter order, to change in place (lengths stay).
    pub fn values_mut(&mut self) -> &mut [Vec<f32>] {
        &mut self.values
    }
}

/// The gradient of a loss for each trained parameter, by [`ParamId`].
#[derive(Debug, Clone, PartialEq)]
pub struct Gradients {
    values: Vec<Option<Vec<f32>>>,
}

impl Gradients {
    pub fn new(n_params: usize) -> Gradients {
        Gradients { values: vec![None; n_params] }
    }

    pub fn set(&mut self, id: ParamId, gradient: Vec<f32>) {
        self.values[id.0] = Some(gradient);
    }

    pub fn get(&self, id: ParamId) -> Option<&[f32]> {
        self.values[id.0].as_deref()
    }
}
