//! Seeded shuffling and the epoch-by-epoch batch sampler.

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Fisher-Yates with ChaCha8's raw output and a fixed bounded mapping, so a
/// seed gives the same order whatever rand's own `shuffle` does in later versions.
pub fn shuffle<T>(items: &mut [T], rng: &mut ChaCha8Rng) {
    for i in (1..items.len()).rev() {
        let j = ((u128::from(rng.next_u64()) * (i as u128 + 1)) >> 64) as usize;
        items.swap(i, j);
    }
}

/// Draws batches of sample indices from shuffled epochs. A batch that runs
/// past the end of an epoch continues in the next (freshly shuffled) one, so
/// every batch has the same size.
#[derive(Debug, Clone)]
pub struct EpochSampler {
    order: Vec<u32>,
    position: usize,
    samples_seen: u64,
    rng: ChaCha8Rng,
}

impl EpochSampler {
    pub fn new(len: usize, seed: u64) -> EpochSampler {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut order: Vec<u32> = (0..len as u32).collect();
        shuffle(&mut order, &mut rng);
        EpochSampler {
            order,
            position: 0,
            samples_seen: 0,
            rng,
        }
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// The next `batch` indices (none from an empty sampler).
    pub fn next_batch(&mut self, batch: usize, out: &mut Vec<usize>) {
        out.clear();
        if self.order.is_empty() {
            return;
        }
        while out.len() < batch {
            if self.position == self.order.len() {
                shuffle(&mut self.order, &mut self.rng);
                self.position = 0;
            }
            let take = (batch - out.len()).min(self.order.len() - self.position);
            out.extend(
                self.order[self.position..self.position + take]
                    .iter()
                    .map(|&i| i as usize),
            );
            self.position += take;
        }
        self.samples_seen += batch as u64;
    }

    pub fn samples_seen(&self) -> u64 {
        self.samples_seen
    }

    /// Samples seen divided by the number of samples in an epoch.
    pub fn epoch(&self) -> f64 {
        self.samples_seen as f64 / self.order.len().max(1) as f64
    }
}
