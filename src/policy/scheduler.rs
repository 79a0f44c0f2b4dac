//! Run-time evaluation of a policy that may react to an observed metric.
//! The trainer asks `lr(t)` before every update and calls `observe` after
//! every evaluation; pure policies ignore the observations.

use super::plateau::PlateauTracker;
use super::{Node, Policy};

#[derive(Debug, Clone)]
enum StageState {
    Pure,
    Reduce {
        lr: f64,
        tracker: PlateauTracker,
    },
    Change {
        index: usize,
        since: u64,
        tracker: PlateauTracker,
    },
}

#[derive(Debug, Clone)]
pub struct Scheduler {
    policy: Policy,
    states: Vec<StageState>,
}

impl Scheduler {
    pub fn new(policy: Policy) -> Self {
        let states = policy
            .stages()
            .iter()
            .map(|stage| match &stage.node {
                Node::Reduce(p) => StageState::Reduce {
                    lr: p.lr,
                    tracker: PlateauTracker::new(p.rule),
                },
                Node::Change(p) => StageState::Change {
                    index: p.start_index,
                    since: 0,
                    tracker: PlateauTracker::new(p.rule),
                },
                _ => StageState::Pure,
            })
            .collect();
        Scheduler { policy, states }
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The learning rate for update t (0-based).
    pub fn lr(&self, t: u64) -> f64 {
        let (i, local) = self.policy.locate(t);
        match (&self.states[i], &self.policy.stages()[i].node) {
            (StageState::Reduce { lr, .. }, _) => *lr,
            (StageState::Change { index, since, .. }, Node::Change(p)) => {
                p.policies[*index].lr(local.saturating_sub(*since))
            }
            (_, node) => node.lr(local),
        }
    }

    /// Feeds a metric measured after `step` updates; it affects updates
    /// t >= step. Returns a description of what changed, if anything.
    pub fn observe(&mut self, step: u64, metric: f64) -> Option<String> {
        let (i, local) = self.policy.locate(step);
        let node = &self.policy.stages()[i].node;
        match (&mut self.states[i], node) {
            (StageState::Reduce { lr, tracker }, Node::Reduce(p)) => {
                if !tracker.observe(metric) {
                    return None;
                }
                let new_lr = (*lr * p.factor).max(p.min_lr);
                if *lr - new_lr > p.eps {
                    let message = format!(
                        "ReduceLROnPlateau: lr {:.4e} -> {:.4e} at step {step}",
                        *lr, new_lr
                    );
                    *lr = new_lr;
                    return Some(message);
                }
                None
            }
            (
                StageState::Change {
                    index,
                    since,
                    tracker,
                },
                Node::Change(p),
            ) => {
                if !tracker.observe(metric) {
                    return None;
                }
                let next = if p.cycle {
                    (*index + 1) % p.policies.len()
                } else {
                    (*index + 1).min(p.policies.len() - 1)
                };
                if next == *index {
                    return None;
                }
                *index = next;
                *since = local;
                Some(format!(
                    "ChangeLROnPlateau: switched to {} at step {step}",
                    p.policies[next]
                ))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reduce_on_plateau_reduces_after_patience() {
        let policy = Policy::parse("ReduceLROnPlateau(lr=0.1,factor=0.5,patience=1)").unwrap();
        let mut s = Scheduler::new(policy);
        assert_eq!(s.lr(0), 0.1);
        assert!(s.observe(10, 1.0).is_none());
        assert!(s.observe(20, 1.0).is_none());
        assert!(s.observe(30, 1.0).is_some());
        assert_eq!(s.lr(30), 0.05);
    }

    #[test]
    fn change_on_plateau_switches_with_local_time() {
        let policy = Policy::parse(
            "ChangeLROnPlateau(policies=[FIX(k0=0.1),EXP(k0=0.05,gamma=0.5)],patience=0)",
        )
        .unwrap();
        let mut s = Scheduler::new(policy);
        assert_eq!(s.lr(5), 0.1);
        s.observe(10, 1.0);
        assert!(s.observe(20, 1.0).is_some());
        assert_eq!(s.lr(20), 0.05);
        assert_eq!(s.lr(21), 0.025);
    }

    #[test]
    fn plateau_stage_inside_composite() {
        let policy = Policy::parse(
            "LinearLR(lr=0.1,start_factor=0.5,total_iters=10) for 10 then ReduceLROnPlateau(lr=0.1,factor=0.1,patience=0)",
        )
        .unwrap();
        let mut s = Scheduler::new(policy);
        assert_eq!(s.lr(0), 0.05);
        s.observe(12, 2.0);
        s.observe(14, 2.0);
        assert!((s.lr(15) - 0.01).abs() < 1e-15);
    }
}
