//! Adam as Keras does it (epsilon 1e-7, bias correction folded into the step size), on the CPU
//! weight store: both training engines hand it their gradients. Its moments are kept by
//! parameter so that a checkpoint can carry them (`adam.m.<name>`, `adam.v.<name>`).

use crate::params::{Gradients, ParamId, ParamSpec, Weights};

const BETA1: f64 = 0.9;
const BETA2: f64 = 0.999;
const EPSILON: f64 = 1e-7;

#[derive(Debug, Clone, PartialEq)]
pub struct Adam {
    /// First and second moments of each parameter (empty for state parameters).
    m: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    pub step: u64,
    pub learning_rate: f64,
}

impl Adam {
    pub fn new(specs: &[ParamSpec], learning_rate: f64) -> Adam {
        let zeros = || specs.iter().map(|s| if s.trained { vec![0.0; s.len()] } else { Vec::new() }).collect();
        Adam { m: zeros(), v: zeros(), step: 0, learning_rate }
    }

    fn step_size(&self) -> f64 {
        let t = self.step as f64;
        self.learning_rate * (1.0 - BETA2.powf(t)).sqrt() / (1.0 - BETA1.powf(t))
    }

    /// One step: every trained parameter with a gradient moves.
    pub fn update(&mut self, specs: &[ParamSpec], weights: &mut Weights, grads: &Gradients) {
        self.step += 1;
        let alpha = self.step_size() as f32;
        let (b1, b2, eps) = (BETA1 as f32, BETA2 as f32, EPSILON as f32);
        for (k, spec) in specs.iter().enumerate() {
            let id = ParamId(k);
            let Some(g) = grads.get(id).filter(|_| spec.trained) else { continue };
            let w = weights.get_mut(id);
            for (((w, m), v), g) in w.iter_mut().zip(&mut self.m[k]).zip(&mut self.v[k]).zip(g) {
                *m = *m * b1 + g * (1.0 - b1);
                *v = *v * b2 + g * g * (1.0 - b2);
                *w -= *m * alpha / (v.sqrt() + eps);
            }
        }
    }

    /// The moments as named tensors' values, for a resume file.
    pub fn moments<'s>(&'s self, specs: &'s [ParamSpec]) -> impl Iterator<Item = (String, Vec<usize>, &'s [f32])> + 's {
        specs.iter().enumerate().filter(|(_, s)| s.trained).flat_map(move |(k, s)| {
            [
                (format!("adam.m.{}", s.name), s.dims.clone(), self.m[k].as_slice()),
                (format!("adam.v.{}", s.name), s.dims.clone(), self.v[k].as_slice()),
            ]
        })
    }

    /// Restores the moments from named values; `None` when one is missing or has another length.
    pub fn restore(&mut self, specs: &[ParamSpec], get: impl Fn(&str) -> Option<Vec<f32>>, step: u64) -> Option<()> {
        for (k, spec) in specs.iter().enumerate().filter(|(_, s)| s.trained) {
            let m = get(&format!("adam.m.{}", spec.name)).filter(|m| m.len() == spec.len())?;
            let v = get(&format!("adam.v.{}", spec.name)).filter(|v| v.len() == spec.len())?;
            self.m[k] = m;
            self.v[k] = v;
        }
        self.step = step;
        Some(())
    }
}
