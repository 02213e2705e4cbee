//! An exponential moving average of the weights (Polyak averaging; timm's `ModelEmaV2`), kept
//! beside the trained weights when `model.yaml` sets `weight_average`. After every optimiser
//! step each parameter's average moves toward its new value:
//! `average = d * average + (1 - d) * value` with `d = min(decay, (1 + t) / (10 + t))` at step
//! `t` (the warm-up keeps the start's random values from lingering). State parameters (batch
//! norm's running statistics) are averaged too, so the averaged network's statistics are its
//! own. Validation, early stopping and the checkpoint then use the average.

use crate::params::Weights;

#[derive(Debug, Clone, PartialEq)]
pub struct WeightAverage {
    decay: f64,
    weights: Weights,
}

impl WeightAverage {
    /// An average that starts at `start` (the first step's warm-up factor, 1/10, keeps little of it).
    pub fn new(decay: f64, start: Weights) -> WeightAverage {
        WeightAverage { decay, weights: start }
    }

    /// The factor the average keeps at optimiser step `step` (1-based).
    fn factor(&self, step: u64) -> f64 {
        let t = step.saturating_sub(1) as f64;
        self.decay.min((1.0 + t) / (10.0 + t))
    }

    /// Moves the average toward `weights`, after optimiser step `step` (1-based).
    pub fn update(&mut self, weights: &Weights, step: u64) {
        let d = self.factor(step) as f32;
        for (average, value) in self.weights.values_mut().iter_mut().zip(weights.values()) {
            for (a, v) in average.iter_mut().zip(value) {
                *a = *a * d + v * (1.0 - d);
            }
        }
    }

    pub fn weights(&self) -> &Weights {
        &self.weights
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::{Init, ParamSpec};

    #[test]
    fn the_average_warms_up_then_keeps_its_decay() {
        let specs = [
            ParamSpec { name: "w".into(), dims: vec![2], init: Init::Zeros, trained: true },
            ParamSpec { name: "running_mean".into(), dims: vec![1], init: Init::Zeros, trained: false },
        ];
        let mut average = WeightAverage::new(0.99, Weights::initial(&specs, 0));
        assert_eq!(average.factor(1), 0.1);
        assert_eq!(average.factor(2), 2.0 / 11.0);
        assert_eq!(average.factor(100_000), 0.99);
        let target = Weights::from_values(&specs, vec![vec![1.0, -2.0], vec![4.0]]).unwrap();
        average.update(&target, 1);
        assert_eq!(average.weights().values(), &[vec![0.9, -1.8], vec![3.6]], "state parameters too");
        // Held at one value long enough, the average reaches it.
        for step in 2..2000 {
            average.update(&target, step);
        }
        for (a, t) in average.weights().values().iter().flatten().zip(target.values().iter().flatten()) {
            assert!((a - t).abs() < 1e-5, "{a} against {t}");
        }
    }
}
