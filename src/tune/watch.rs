//! `lrtop tune collect DIR --watch`: a tune directory's trials as tune
//! events, polled from its files (and, for Slurm, the scheduler), so that
//! the tune dashboard shows a sweep running elsewhere: each trial queued,
//! started once it runs or its log appears, finished with its result. A
//! halving search's rungs are queued as they are written.

use std::collections::HashMap;
use std::path::Path;

use super::local::TuneEvent;
use super::manifest::Manifest;
use super::results::Trial;
use super::slurm_halving::{self, Stage};
use super::slurm_state;
use super::trial::Job;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Queued,
    Started,
    Finished,
}

/// Turns successive looks at a tune directory into the events between them.
pub struct Watcher {
    manifest: Manifest,
    dir: std::path::PathBuf,
    /// By (rung, trial index): the job id given and how far it got.
    known: HashMap<(usize, usize), (usize, Phase)>,
    next_id: usize,
    ended: bool,
}

/// One trial at one rung, as the files show it now.
struct Seen {
    rung: usize,
    budget: u64,
    trial: Trial,
    log: std::path::PathBuf,
    summary: std::path::PathBuf,
}

fn unfinished(status: &str) -> bool {
    matches!(status, "running" | "pending" | "started")
}

impl Watcher {
    pub fn new(manifest: Manifest, dir: &Path) -> Watcher {
        Watcher {
            manifest,
            dir: dir.to_path_buf(),
            known: HashMap::new(),
            next_id: 0,
            ended: false,
        }
    }

    /// What changed since the last poll; `Ended` once every trial has.
    pub fn poll(&mut self) -> Vec<TuneEvent> {
        if self.ended {
            return Vec::new();
        }
        let (seen, done) = self.look();
        let mut events = Vec::new();
        let mut queued = Vec::new();
        for s in &seen {
            let key = (s.rung, s.trial.index);
            if !self.known.contains_key(&key) {
                let id = self.next_id;
                self.next_id += 1;
                self.known.insert(key, (id, Phase::Queued));
                queued.push(Job {
                    id,
                    index: s.trial.index,
                    spec: s.trial.spec.clone(),
                    steps: s.budget,
                    log: s.log.clone(),
                    summary: s.summary.clone(),
                });
            }
        }
        if !queued.is_empty() {
            events.push(TuneEvent::Queued(queued));
        }
        for s in seen {
            let Some((id, phase)) = self.known.get_mut(&(s.rung, s.trial.index)) else {
                continue;
            };
            let ended = !unfinished(&s.trial.status);
            let running = s.trial.status != "pending" || s.log.exists();
            if *phase == Phase::Queued && (running || ended) {
                *phase = Phase::Started;
                events.push(TuneEvent::Started { job: *id });
            }
            if *phase == Phase::Started && ended {
                *phase = Phase::Finished;
                events.push(TuneEvent::Finished {
                    job: *id,
                    trial: Box::new(s.trial),
                });
            }
        }
        if done {
            self.ended = true;
            events.push(TuneEvent::Ended);
        }
        events
    }

    /// Every trial the directory holds now, and whether the tune is over.
    fn look(&self) -> (Vec<Seen>, bool) {
        let (m, dir) = (&self.manifest, &self.dir);
        if m.halving.is_some() && m.executor == "slurm" {
            let replay = slurm_halving::replay(m, dir);
            let mut seen = Vec::new();
            for (rung, (budget, trials)) in replay.rungs.into_iter().enumerate() {
                let rdir = slurm_halving::rung_dir(dir, rung);
                for trial in trials {
                    let i = trial.index;
                    seen.push(Seen {
                        rung,
                        budget,
                        log: rdir.join(format!("logs/trial-{i}.jsonl")),
                        summary: rdir.join(format!("results/trial-{i}.json")),
                        trial,
                    });
                }
            }
            let over = matches!(replay.stage, Stage::Done | Stage::Stopped { .. });
            return (seen, over);
        }
        let mut trials = m.collect(dir);
        if m.executor == "slurm" {
            slurm_state::annotate(m, dir, &mut trials);
        }
        let done = trials.iter().all(|t| !unfinished(&t.status));
        let seen = trials
            .into_iter()
            .filter_map(|trial| {
                let entry = m.trials.get(trial.index)?;
                Some(Seen {
                    rung: 0,
                    budget: m.steps,
                    log: dir.join(&entry.log),
                    summary: dir.join(&entry.result),
                    trial,
                })
            })
            .collect();
        (seen, done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trials_are_queued_started_and_finished_once_each() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for sub in ["logs", "results"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        let manifest = Manifest {
            id: "tune-1".into(),
            executor: "local".into(),
            search: "grid".into(),
            objective: crate::tune::results::Objective::Acc,
            steps: 10,
            train: crate::tune::trial::TrainTemplate {
                model_flags: vec![],
                eval_every: 5,
                target_acc: None,
            },
            halving: None,
            min_steps: None,
            slurm: None,
            trials: crate::tune::slurm::entries(&["A".into(), "B".into()]),
        };
        let mut w = Watcher::new(manifest, d);
        let names = |events: &[TuneEvent]| -> Vec<String> {
            events
                .iter()
                .map(|e| match e {
                    TuneEvent::Queued(jobs) => format!("queued {}", jobs.len()),
                    TuneEvent::Started { job } => format!("started {job}"),
                    TuneEvent::Finished { job, trial } => {
                        format!("finished {job} {}", trial.status)
                    }
                    TuneEvent::Ended => "ended".into(),
                })
                .collect()
        };
        assert_eq!(names(&w.poll()), ["queued 2"]);
        std::fs::write(d.join("logs/trial-1.jsonl"), "{\"step\": 1}\n").unwrap();
        assert_eq!(names(&w.poll()), ["started 1"]);
        assert!(w.poll().is_empty());
        let summary = r#"{"policy": "A", "steps": 10, "wall_s": 1.0, "steps_per_s": 10.0, "log": "x", "final_acc": 0.5}"#;
        std::fs::write(d.join("results/trial-1.json"), summary).unwrap();
        std::fs::write(d.join("results/trial-0.json"), summary).unwrap();
        assert_eq!(
            names(&w.poll()),
            ["started 0", "finished 0 ok", "finished 1 ok", "ended"]
        );
        assert!(w.poll().is_empty());
    }
}
