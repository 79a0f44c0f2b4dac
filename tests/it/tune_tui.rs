//! Tune mode of the dashboard on ratatui's TestBackend: the trials table
//! above the overlaid curves, the leader starred, sorting, opening one
//! trial and going back, and no panic at any size.

use std::path::PathBuf;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use lrtop::metrics::Record;
use lrtop::session::{MonitorSetup, RunStatus, Session};
use lrtop::tui::app::App;
use lrtop::tui::panels;
use lrtop::tui::theme::Theme;
use lrtop::tui::tune_view::{SortColumn, TuneView};
use lrtop::tune::board::TrialBoard;
use lrtop::tune::local::TuneEvent;
use lrtop::tune::results::{Objective, Trial};
use lrtop::tune::trial::Job;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

const SPECS: [&str; 4] = [
    "FIX(k0=0.01)",
    "FIX(k0=0.1)",
    "COS(k0=0.001,k1=0.1,l=200)",
    "EXP(k0=0.1,gamma=1e200)",
];

fn job(i: usize) -> Job {
    Job {
        id: i,
        index: i,
        spec: SPECS[i].into(),
        steps: 200,
        log: PathBuf::from(format!("runs/t/trial-{i}.jsonl")),
        summary: PathBuf::from(format!("runs/t/trial-{i}.summary.json")),
    }
}

fn records(rate: f64, steps: u64) -> Vec<Record> {
    let mut out = Vec::new();
    for step in 1..=steps {
        let t = step as f64;
        out.push(Record {
            step: Some(step),
            time: Some(1_000_000.0 + t * 0.01),
            lr: Some(rate),
            loss: Some(2.3 * (-t * rate / 2.0).exp() + 0.05),
            ..Default::default()
        });
        if step % 50 == 0 {
            out.push(Record {
                step: Some(step),
                extra: vec![("eval_acc".into(), 1.0 - (-t * rate).exp() * 0.9)],
                ..Default::default()
            });
        }
    }
    out
}

fn trial(i: usize, acc: f64, to_target: Option<u64>) -> Trial {
    let mut t = Trial::failed(i, SPECS[i], "ok".into());
    t.final_acc = Some(acc);
    t.best_acc = Some(acc + 0.002);
    t.steps = 200;
    t.steps_to_target = to_target;
    t.wall_s = 0.42 + i as f64 / 10.0;
    t
}

fn tune_app(title: &str) -> App {
    let session =
        Session::new(MonitorSetup::default()).with_trials(TrialBoard::new(Objective::Acc, 200));
    let mut app = App::new(session, Theme::default(), title.into());
    app.tune = Some(TuneView::new());
    app
}

fn finished(i: usize, trial: Trial) -> TuneEvent {
    TuneEvent::Finished {
        job: i,
        trial: Box::new(trial),
    }
}

/// Two trials done (#1 leads), #2 running, #3 failed at run time: the tune
/// driver's events replayed.
fn app() -> App {
    let mut app = tune_app("lrtop tune · 4 trials · digits · mlp");
    app.now = 1_000_010.0;
    let jobs: Vec<Job> = (0..4).map(job).collect();
    app.apply(TuneEvent::Queued(jobs).into());
    for (i, rate) in [(0usize, 0.01), (1, 0.1), (2, 0.05)] {
        app.apply(TuneEvent::Started { job: i }.into());
        let steps = if i == 2 { 120 } else { 200 };
        app.session
            .push_records(i, &records(rate, steps), 1_000_005.0);
    }
    app.apply(finished(0, trial(0, 0.8731, None)).into());
    app.apply(finished(1, trial(1, 0.9611, Some(150))).into());
    app.apply(TuneEvent::Started { job: 3 }.into());
    let mut failed = Trial::failed(
        3,
        SPECS[3],
        "exit code 1: training failed: learning rate must be finite".into(),
    );
    failed.log = "runs/t/trial-3.jsonl".into();
    app.apply(finished(3, failed).into());
    app.notice = None;
    app.extra_keys = lrtop::tui::keys::help_rows(lrtop::tui::tune_view::KEYS);
    app
}

fn order(app: &App) -> Vec<usize> {
    let board = app.session.trials.as_ref().unwrap();
    app.tune.as_ref().unwrap().order(board)
}

fn render(app: &mut App, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|f| panels::render(f, app)).unwrap();
    let buffer = terminal.backend().buffer().clone();
    let mut out = String::new();
    for y in 0..buffer.area.height {
        for x in 0..buffer.area.width {
            out.push_str(buffer[(x, y)].symbol());
        }
        out.push('\n');
    }
    out
}

fn key(app: &mut App, code: KeyCode) -> bool {
    app.on_key(KeyEvent::new(code, KeyModifiers::NONE))
}

#[test]
fn trials_view_120x40() {
    let mut app = app();
    insta::assert_snapshot!(render(&mut app, 120, 40));
}

#[test]
fn leader_is_starred_and_others_faint() {
    let mut app = app();
    let screen = render(&mut app, 120, 40);
    assert!(screen.contains("★1"), "{screen}");
    assert!(
        screen.contains("120/200"),
        "the running trial shows its progress:\n{screen}"
    );
    assert!(screen.contains("failed"), "{screen}");
    let runs = &app.session.runs;
    assert!(!app.is_ghost(1), "the leader is bright");
    assert!(app.is_ghost(0) && app.is_ghost(2), "the others are faint");
    assert_eq!(
        runs[3].status,
        RunStatus::Failed("exit code 1: training failed: learning rate must be finite".into())
    );
    assert_eq!(runs[2].status, RunStatus::Training);
}

#[test]
fn sorting_and_selection() {
    let mut app = app();
    // By rank: the two finished trials, then the running one, then the failed one.
    assert_eq!(order(&app), vec![1, 0, 2, 3]);
    key(&mut app, KeyCode::Char('s'));
    assert_eq!(app.tune.as_ref().unwrap().sort, SortColumn::Trial);
    assert_eq!(order(&app), vec![0, 1, 2, 3]);
    key(&mut app, KeyCode::Char('r'));
    assert_eq!(order(&app), vec![3, 2, 1, 0]);
    // The selection (the leader, #1, at the top at first) follows its trial.
    let board = app.session.trials.as_ref().unwrap();
    assert_eq!(app.tune.as_ref().unwrap().selected_position(board), 2);
    key(&mut app, KeyCode::Up);
    assert_eq!(app.view.selected_run, 2);
    key(&mut app, KeyCode::Home);
    assert_eq!(app.view.selected_run, 3);
    let screen = render(&mut app, 100, 30);
    assert!(screen.contains("sort: trial ↑"), "{screen}");
}

#[test]
fn enter_opens_a_trial_and_esc_goes_back() {
    let mut app = app();
    // The selection starts on the leader (#1).
    assert!(key(&mut app, KeyCode::Enter));
    let visible: Vec<bool> = (0..app.session.runs.len())
        .map(|r| app.is_visible(r))
        .collect();
    assert_eq!(visible, vec![false, true, false, false]);
    let screen = render(&mut app, 120, 40);
    assert!(
        !screen.contains("sort:"),
        "the table is hidden while a trial is open:\n{screen}"
    );
    assert!(
        key(&mut app, KeyCode::Esc),
        "Esc goes back, it does not quit"
    );
    assert!((0..app.session.runs.len()).all(|r| app.is_visible(r)));
    assert!(app.is_ghost(0) && !app.is_ghost(1));
    let screen = render(&mut app, 120, 40);
    assert!(screen.contains("sort:"), "{screen}");
    assert!(!key(&mut app, KeyCode::Char('q')), "q still quits");
}

#[test]
fn no_panic_at_any_size() {
    let mut app = app();
    for w in (0..=130u16).step_by(9).chain([1, 2, 20, 80, 200]) {
        for h in (0..=60u16).step_by(4).chain([1, 2, 3, 5, 17, 18, 24]) {
            render(&mut app, w, h);
        }
    }
    key(&mut app, KeyCode::Enter);
    for (w, h) in [(1, 1), (5, 3), (20, 10), (80, 24)] {
        render(&mut app, w, h);
    }
}

#[test]
fn many_trials_scroll_with_the_selection() {
    let mut app = tune_app("t");
    let jobs: Vec<Job> = (0..40)
        .map(|i| Job {
            id: i,
            index: i,
            spec: format!("FIX(k0=0.{i:02}1)"),
            ..job(0)
        })
        .collect();
    app.apply(TuneEvent::Queued(jobs).into());
    for _ in 0..35 {
        key(&mut app, KeyCode::Down);
    }
    let screen = render(&mut app, 100, 30);
    assert!(screen.contains("FIX(k0=0.351)"), "{screen}");
    assert!(!screen.contains("FIX(k0=0.001)"), "{screen}");
}
