//! TensorBoard's smoothing: an exponential moving average debiased for its
//! zero start, so the first points are not dragged towards 0. Non-finite
//! values pass through unsmoothed and do not disturb the average.

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ema {
    weight: f64,
    last: f64,
    accumulated: i32,
}

impl Ema {
    /// `weight` in [0, 1): 0 is no smoothing, 0.99 is heavy.
    pub fn new(weight: f64) -> Self {
        Ema {
            weight: weight.clamp(0.0, 0.999),
            last: 0.0,
            accumulated: 0,
        }
    }

    pub fn weight(&self) -> f64 {
        self.weight
    }

    pub fn push(&mut self, value: f64) -> f64 {
        if !value.is_finite() {
            return value;
        }
        self.last = self.last * self.weight + (1.0 - self.weight) * value;
        self.accumulated = self.accumulated.saturating_add(1);
        let debias = 1.0 - self.weight.powi(self.accumulated);
        if debias > 0.0 {
            self.last / debias
        } else {
            value
        }
    }
}

/// Smooths a whole series at once.
pub fn debiased_ema(values: &[f64], weight: f64) -> Vec<f64> {
    let mut ema = Ema::new(weight);
    values.iter().map(|&v| ema.push(v)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debiased_start_and_nan_passthrough() {
        let s = debiased_ema(&[10.0, 10.0, f64::NAN, 10.0], 0.9);
        assert!(
            (s[0] - 10.0).abs() < 1e-12,
            "debiasing keeps the first point"
        );
        assert!((s[1] - 10.0).abs() < 1e-12);
        assert!(s[2].is_nan());
        assert!((s[3] - 10.0).abs() < 1e-12);
        assert_eq!(debiased_ema(&[1.0, 3.0], 0.0), vec![1.0, 3.0]);
        // Matches TensorBoard: last = 0.5*0 + 0.5*1 = 0.5, debias 0.5 -> 1; then 0.25+1.5=1.75 / 0.75.
        let s = debiased_ema(&[1.0, 3.0], 0.5);
        assert!((s[1] - 1.75 / 0.75).abs() < 1e-12);
    }
}
