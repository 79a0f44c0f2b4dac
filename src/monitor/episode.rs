//! Edge triggering with hysteresis: one alert per episode of a condition.
//! An episode starts when the condition first holds and ends only after it
//! has been clear for `clear_after` consecutive checks; only then can the
//! same alert fire again.

#[derive(Debug, Clone)]
pub struct Episode {
    active: bool,
    clear_streak: u32,
    clear_after: u32,
}

impl Episode {
    pub fn new(clear_after: u32) -> Self {
        Episode {
            active: false,
            clear_streak: 0,
            clear_after: clear_after.max(1),
        }
    }

    /// Feeds the condition's current state; true exactly when a new episode
    /// starts (the moment to raise the alert).
    pub fn update(&mut self, condition: bool) -> bool {
        if condition {
            self.clear_streak = 0;
            if !self.active {
                self.active = true;
                return true;
            }
        } else if self.active {
            self.clear_streak += 1;
            if self.clear_streak >= self.clear_after {
                self.active = false;
                self.clear_streak = 0;
            }
        }
        false
    }

    pub fn is_active(&self) -> bool {
        self.active
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_once_per_episode_and_rearms_after_clearing() {
        let mut e = Episode::new(3);
        let fired: Vec<bool> = [
            true, true, false, true, // one episode: a single clear check is not enough
            false, false, false, // clear for 3 checks: episode over
            true,  // fires again
        ]
        .iter()
        .map(|&c| e.update(c))
        .collect();
        assert_eq!(
            fired,
            vec![true, false, false, false, false, false, false, true]
        );
    }
}
