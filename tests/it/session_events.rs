//! The session as a reducer of recorded events, without a terminal: the
//! trainer's, a follower's and a cold load's events replayed into a
//! `Session` (what headless mode reads) and into an `App` (what the
//! dashboard reads) give the same session.

use std::path::PathBuf;

use lrtop::ingest::{FieldMap, FollowStatus, Format, LoadOptions, SourceEvent, load_bytes};
use lrtop::metrics::Record;
use lrtop::policy::Policy;
use lrtop::session::{MonitorSetup, RunStatus, Session, SessionEvent};
use lrtop::train::trainer::{EndReason, RunSummary, TrainEvent};
use lrtop::tui::app::App;
use lrtop::tui::theme::Theme;

fn records(from: u64, to: u64, loss: impl Fn(u64) -> f64) -> Vec<Record> {
    (from..=to)
        .map(|s| Record {
            step: Some(s),
            lr: Some(0.1),
            loss: Some(loss(s)),
            ..Default::default()
        })
        .collect()
}

fn summary(end: EndReason) -> RunSummary {
    RunSummary {
        policy: "FIX(k0=0.1)".into(),
        final_acc: Some(0.9),
        best_acc: Some(0.91),
        final_top5: None,
        eval_loss: Some(0.3),
        best_eval_loss: Some(0.3),
        confidence_mean: None,
        confidence_std: None,
        final_train_loss: Some(0.2),
        steps: 50,
        steps_to_target: None,
        wall_s: 1.0,
        steps_per_s: 50.0,
        log: "runs/a.jsonl".into(),
        end_why: matches!(end, EndReason::Diverged).then(|| "loss climbed to 9.1".into()),
        end,
    }
}

/// A training session as the trainer thread reports it: a run, a restart
/// with another policy, the second run to its end.
fn training_events() -> Vec<SessionEvent> {
    let fix = Policy::parse("FIX(k0=0.1)").unwrap();
    let cos = Policy::parse("COS(k0=0.001,k1=0.1,l=50)").unwrap();
    let started = |attempt, policy: &Policy| TrainEvent::RunStarted {
        attempt,
        policy: policy.clone(),
        log: PathBuf::from(format!("runs/{attempt}.jsonl")),
        steps: 50,
        params: lrtop::train::trainer::ParamCount {
            trainable: 1_000,
            total: 1_000,
        },
    };
    vec![
        TrainEvent::Notice("training on the CPU".into()),
        started(0, &fix),
        TrainEvent::Records {
            attempt: 0,
            records: records(1, 20, |s| 2.0 / s as f64),
        },
        TrainEvent::Paused(true),
        TrainEvent::Paused(false),
        TrainEvent::RunFinished {
            attempt: 0,
            summary: summary(EndReason::Restarted),
        },
        started(1, &cos),
        TrainEvent::Records {
            attempt: 1,
            records: records(1, 50, |s| 1.0 / s as f64),
        },
        TrainEvent::Sample {
            attempt: 1,
            step: 50,
            text: "hello".into(),
        },
        TrainEvent::RunFinished {
            attempt: 1,
            summary: summary(EndReason::Completed),
        },
    ]
    .into_iter()
    .map(SessionEvent::from)
    .collect()
}

#[test]
fn training_events_reduce_to_runs() {
    let mut session = Session::new(MonitorSetup::default());
    for event in training_events() {
        session.apply(event);
    }
    assert_eq!(session.runs.len(), 2);
    assert_eq!(session.training, Some(1));
    let (first, second) = (&session.runs[0], &session.runs[1]);
    assert_eq!(first.label, "#1 FIX(k0=0.1)");
    assert_eq!(first.status, RunStatus::Stopped);
    assert_eq!(first.records, 20);
    assert_eq!(second.status, RunStatus::Done);
    assert_eq!(second.records, 50);
    assert_eq!(second.total_steps, Some(50));
    assert_eq!(second.sample, Some((50, "hello".to_string())));
    assert_eq!(second.data.last_step(), Some(50));
}

#[test]
fn headless_and_dashboard_reduce_the_same_events_to_the_same_session() {
    let mut headless = Session::new(MonitorSetup::default());
    let mut app = App::new(
        Session::new(MonitorSetup::default()),
        Theme::default(),
        "t".into(),
    );
    for event in training_events() {
        let a = headless.apply(event.clone());
        let b = app.apply(event);
        assert_eq!(a.len(), b.len());
    }
    assert_eq!(headless.runs.len(), app.session.runs.len());
    for (h, d) in headless.runs.iter().zip(&app.session.runs) {
        assert_eq!(h.summary(), d.summary());
        assert_eq!(h.status, d.status);
    }
    // The UI's own answer: the newest run selected, the earlier one faint.
    assert_eq!(app.view.selected_run, 1);
    assert!(app.is_ghost(0) && !app.is_ghost(1));
    assert!(
        app.notice
            .as_deref()
            .is_some_and(|n| n.contains("Completed")),
        "{:?}",
        app.notice
    );
}

#[test]
fn follower_and_cold_load_events_fill_a_run() {
    let log = b"{\"step\": 1, \"loss\": 2.0, \"lr\": 0.1}\n{\"step\": 2, \"loss\": 1.0, \"lr\": 0.1}\nbad\n";
    let loaded = load_bytes(
        log,
        Format::JSONL,
        &FieldMap::new(),
        &LoadOptions::default(),
    )
    .unwrap();
    let mut session = Session::new(MonitorSetup::default());
    let cold = session.add_run("cold".into(), None);
    let live = session.add_run("live".into(), None);
    let events: Vec<SessionEvent> = vec![
        SourceEvent::Loaded {
            run: cold,
            loaded: Box::new(loaded.clone()),
        }
        .into(),
        SourceEvent::Status {
            run: live,
            status: FollowStatus::Reading,
            detail: None,
        }
        .into(),
        SourceEvent::Format {
            run: live,
            format: Format::JSONL,
        }
        .into(),
        SourceEvent::Records {
            run: live,
            records: records(1, 2, |s| 3.0 - s as f64),
        }
        .into(),
        SourceEvent::BadLines {
            run: live,
            total: 1,
            last_error: "line 3: not JSON".into(),
        }
        .into(),
    ];
    for event in events {
        session.apply(event);
    }
    let cold = &session.runs[cold];
    assert_eq!(cold.status, RunStatus::Done);
    assert_eq!(cold.records, 2);
    assert_eq!(cold.bad_lines, 1);
    assert_eq!(cold.format, Some("jsonl"));
    let live = &session.runs[live];
    assert_eq!(live.status, RunStatus::Following);
    assert_eq!(live.records, 2);
    assert_eq!(live.bad_lines, 1);
    assert_eq!(cold.summary()["min_loss"], live.summary()["min_loss"]);
}

#[test]
fn discovered_logs_become_runs_and_a_newer_checkpoint_continues_its_run() {
    use lrtop::ingest::Source;
    use lrtop::ingest::scan::Discovered;
    let mut session = Session::new(MonitorSetup::default());
    let found = |path: &str, continues: Option<&str>| {
        SessionEvent::Discovered(Box::new(Discovered {
            source: Source {
                label: path.into(),
                ..Source::file(PathBuf::from(path))
            },
            continues: continues.map(PathBuf::from),
        }))
    };
    session.apply(found("out/checkpoint-500/trainer_state.json", None));
    let new = session.take_discovered();
    assert_eq!((new.len(), new[0].run), (1, 0));
    session.apply(
        SourceEvent::Records {
            run: 0,
            records: records(1, 500, |_| 1.0),
        }
        .into(),
    );
    // The newer checkpoint repeats steps 1..=500, then goes on to 1000.
    session.apply(found(
        "out/checkpoint-1000/trainer_state.json",
        Some("out/checkpoint-500/trainer_state.json"),
    ));
    let new = session.take_discovered();
    assert_eq!(new[0].run, 0, "the same run");
    assert_eq!(
        new[0].replaces.as_deref(),
        Some(std::path::Path::new(
            "out/checkpoint-500/trainer_state.json"
        ))
    );
    session.apply(
        SourceEvent::Records {
            run: 0,
            records: records(1, 1000, |_| 1.0),
        }
        .into(),
    );
    assert_eq!(session.runs.len(), 1);
    let run = &session.runs[0];
    assert_eq!((run.records, run.data.last_step()), (1000, Some(1000)));
    assert!(run.resumed_at.is_empty() && run.continued_in.is_none());
    assert_eq!(run.label, "out/checkpoint-1000/trainer_state.json");
    // An unrelated new log is a run of its own.
    session.apply(found("version_1/metrics.csv", None));
    assert_eq!(session.take_discovered()[0].run, 1);
}

/// The session skips quiet runs between ticks (ten thousand idle files):
/// whatever it skips, the stall alerts are those of ticking every run's
/// monitor every time.
#[test]
fn skipping_quiet_runs_between_ticks_raises_the_same_stall_alerts() {
    use lrtop::monitor::AlertKind;
    let mut session = Session::new(MonitorSetup::default());
    let mut reference: Vec<_> = (0..3).map(|_| session.new_monitor()).collect();
    let runs: Vec<_> = (0..3)
        .map(|i| session.add_run(format!("run{i}"), None))
        .collect();
    for &run in &runs {
        session.apply(
            SourceEvent::Status {
                run,
                status: FollowStatus::Following,
                detail: None,
            }
            .into(),
        );
    }
    let t0 = 1_700_000_000.0;
    let (mut got, mut want) = (Vec::new(), Vec::new());
    let mut step = [0u64; 3];
    for tick in 0..1200u32 {
        let now = t0 + f64::from(tick) * 0.5;
        // Run 0 logs every second for 30 s; run 1 at the start and again
        // at 150 s; run 2 never.
        let logs = [
            tick % 2 == 0 && now < t0 + 30.0,
            tick == 0 || tick == 300,
            false,
        ];
        for (i, &logged) in logs.iter().enumerate() {
            if logged {
                step[i] += 1;
                let batch = records(step[i], step[i], |_| 1.0);
                reference[i].observe(&batch[0]);
                session.apply(
                    SourceEvent::Records {
                        run: runs[i],
                        records: batch,
                    }
                    .into(),
                );
            }
        }
        got.extend(
            session
                .tick(now, true)
                .into_iter()
                .map(|(run, a)| (run, a.kind, a.step)),
        );
        for (i, monitor) in reference.iter_mut().enumerate() {
            want.extend(
                monitor
                    .tick(now, true)
                    .into_iter()
                    .map(|a| (runs[i], a.kind, a.step)),
            );
        }
    }
    assert_eq!(got, want);
    let stalls = |run| {
        got.iter()
            .filter(|(r, kind, _)| *r == run && *kind == AlertKind::Stalled)
            .count()
    };
    assert_eq!(
        (stalls(runs[0]), stalls(runs[1]), stalls(runs[2])),
        (1, 2, 0)
    );
}
