//! The dashboard rendered on ratatui's TestBackend: snapshots at the sizes
//! users have, and no panic at any size.

use lrtop::metrics::Record;
use lrtop::session::{MonitorSetup, RunStatus, Session};
use lrtop::tui::app::App;
use lrtop::tui::panels;
use lrtop::tui::theme::Theme;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

/// Two runs: a healthy cosine run with evals, and one that diverges.
fn session() -> Session {
    let mut session = Session::new(MonitorSetup::default());
    let healthy = session.add_run("cosine.jsonl".into(), None);
    let diverged = session.add_run("lr20.jsonl".into(), None);
    let mut records = Vec::new();
    for step in 1..=300u64 {
        let t = step as f64;
        let lr = if step <= 30 {
            3e-3 * (t - 1.0) / 30.0
        } else {
            3e-3 * 0.5 * (1.0 + (std::f64::consts::PI * (t - 31.0) / 270.0).cos())
        };
        let loss = 4.0 * (-t / 60.0).exp() + 0.3 + 0.05 * ((t * 1.7).sin());
        records.push(Record {
            step: Some(step),
            epoch: Some(t / 250.0),
            time: Some(1_000_000.0 + t * 0.1),
            lr: Some(lr),
            loss: Some(loss),
            grad_norm: Some(0.5 + 0.2 * (t * 0.3).cos()),
            extra: Vec::new(),
        });
        if step % 30 == 0 {
            records.push(Record {
                step: Some(step),
                extra: vec![
                    ("eval_loss".into(), loss + 0.1),
                    ("eval_accuracy".into(), 1.0 - loss / 5.0),
                ],
                ..Default::default()
            });
        }
    }
    session.push_records(healthy, &records, 1_000_030.0);
    session.runs[healthy].status = RunStatus::Following;
    session.runs[healthy].total_steps = Some(600);
    let mut bad = Vec::new();
    for step in 1..=40u64 {
        let loss = if step < 30 {
            2.3 * 1.5f64.powi(step as i32)
        } else {
            f64::NAN
        };
        bad.push(Record {
            step: Some(step),
            time: Some(1_000_000.0 + step as f64),
            lr: Some(20.0),
            loss: Some(loss),
            grad_norm: Some(if step < 28 {
                10.0 * step as f64
            } else {
                f64::INFINITY
            }),
            ..Default::default()
        });
    }
    session.push_records(diverged, &bad, 1_000_030.0);
    session.runs[diverged].status = RunStatus::Done;
    session.runs[diverged].bad_lines = 2;
    session
}

fn app() -> App {
    let mut app = App::new(session(), Theme::default(), "lrtop attach · 2 runs".into());
    app.now = 1_000_031.0;
    app
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

#[test]
fn dashboard_80x24() {
    let mut app = app();
    insta::assert_snapshot!(render(&mut app, 80, 24));
}

#[test]
fn dashboard_200x60() {
    let mut app = app();
    insta::assert_snapshot!(render(&mut app, 200, 60));
}

#[test]
fn help_overlay_and_log_scale() {
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    let mut app = app();
    // This loss spans decades: log y on its own; `l` flips it, twice back.
    assert!(app.loss_shown_log());
    app.on_key(KeyEvent::new(KeyCode::Char('l'), KeyModifiers::NONE));
    assert!(!app.loss_shown_log());
    app.on_key(KeyEvent::new(KeyCode::Char('l'), KeyModifiers::NONE));
    assert!(app.loss_shown_log());
    app.on_key(KeyEvent::new(KeyCode::Char('?'), KeyModifiers::NONE));
    let screen = render(&mut app, 100, 30);
    assert!(screen.contains("keys"), "{screen}");
    assert!(screen.contains("log / linear y axis"));
    // Any key closes the help.
    app.on_key(KeyEvent::new(KeyCode::Char('x'), KeyModifiers::NONE));
    let screen = render(&mut app, 100, 30);
    assert!(!screen.contains("log / linear y axis"));
    assert!(screen.contains("log"));
}

#[test]
fn alerts_are_shown() {
    let mut app = app();
    let screen = render(&mut app, 200, 60);
    assert!(
        screen.contains("✖"),
        "a critical alert for the diverged run:\n{screen}"
    );
    assert!(
        screen.contains("bad lines") || screen.contains("2 bad"),
        "{screen}"
    );
}

#[test]
fn no_panic_at_any_size() {
    let mut app = app();
    for w in (1..=130u16).step_by(7).chain([1, 2, 3, 80, 200]) {
        for h in (1..=64u16).step_by(5).chain([1, 2, 24, 60]) {
            render(&mut app, w, h);
        }
    }
    app.view.help = true;
    for (w, h) in [(1, 1), (5, 3), (20, 10), (80, 24)] {
        render(&mut app, w, h);
    }
    app.view.help = false;
    app.view.picker = Some(0);
    for (w, h) in [(1, 1), (5, 3), (20, 10), (80, 24)] {
        render(&mut app, w, h);
    }
}

#[test]
fn empty_session_renders() {
    let mut app = App::new(
        Session::new(MonitorSetup::default()),
        Theme::default(),
        "lrtop".into(),
    );
    let screen = render(&mut app, 80, 24);
    assert!(screen.contains("waiting for records"), "{screen}");
}

/// A triangular cyclic LR peaking at 0.2: the peak is a set value, not an
/// outlier to clip.
fn cyclic_app() -> App {
    let mut session = Session::new(MonitorSetup::default());
    let run = session.add_run("cyclic.jsonl".into(), None);
    let records: Vec<Record> = (1..=400u64)
        .map(|s| {
            // Short peaks: fewer than 5% of the points are near the top.
            let from_peak = ((s % 100) as f64 - 50.0).abs();
            let lr = 0.01 + 0.19 * (1.0 - from_peak / 3.0).max(0.0);
            Record {
                step: Some(s),
                lr: Some(lr),
                loss: Some(2.0 / (s as f64).sqrt()),
                ..Default::default()
            }
        })
        .collect();
    session.apply(lrtop::ingest::SourceEvent::Records { run, records }.into());
    App::new(session, Theme::default(), "t".into())
}

#[test]
fn the_lr_chart_shows_its_peak() {
    let mut app = cyclic_app();
    let screen = render(&mut app, 80, 24);
    let lr_panel: String = screen.lines().take(8).collect::<Vec<_>>().join("\n");
    let top: f64 = lr_panel
        .lines()
        .nth(1)
        .unwrap()
        .trim_start_matches('│')
        .split('│')
        .next()
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        top >= 0.2,
        "the peak is on the LR axis (top label {top}):\n{screen}"
    );
}

#[test]
fn quitting_a_live_training_run_takes_two_presses_and_esc_never_does() {
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    use lrtop::policy::Policy;
    use lrtop::session::{MonitorSetup, Session, SessionEvent};
    use lrtop::train::trainer::TrainEvent;
    let policy = Policy::parse("FIX(k0=0.1)").unwrap();
    let mut app = App::new(
        Session::new(MonitorSetup::default()),
        Theme::default(),
        "t".into(),
    );
    app.train = Some(lrtop::tui::train_view::TrainView::new(100, &policy));
    app.apply(SessionEvent::Train(TrainEvent::RunStarted {
        attempt: 0,
        policy,
        log: "runs/a.jsonl".into(),
        steps: 100,
        params: lrtop::train::trainer::ParamCount {
            trainable: 6_144,
            total: 1_240_000,
        },
    }));
    let key = |c| KeyEvent::new(c, KeyModifiers::NONE);
    assert!(
        app.on_key(key(KeyCode::Esc)),
        "Esc does not quit while training"
    );
    assert!(app.on_key(key(KeyCode::Char('q'))), "the first q asks");
    assert!(app.notice.as_deref().unwrap_or("").contains("q again"));
    // The question is on screen, even at 80 columns with a long step line
    // and an alert about.
    let records: Vec<Record> = (1..=60u64)
        .map(|step| Record {
            step: Some(step),
            loss: Some(1.234_567 / step as f64),
            extra: vec![("eval_accuracy".into(), 0.912_345)],
            ..Default::default()
        })
        .collect();
    app.session.push_records(0, &records, 1.0);
    app.session.alerts.push((
        0,
        lrtop::monitor::Alert::new(
            lrtop::monitor::Level::Warn,
            lrtop::monitor::AlertKind::Plateau,
            Some(60),
            "loss has not improved by 1% for 200 steps at a constant LR",
            "",
        ),
    ));
    let screen = render(&mut app, 80, 24);
    assert!(
        screen.lines().last().unwrap().contains("q again"),
        "{screen}"
    );
    assert!(app.on_key(key(KeyCode::Char('x'))), "another key disarms");
    assert!(app.on_key(key(KeyCode::Char('q'))));
    assert!(!app.on_key(key(KeyCode::Char('q'))), "the second q quits");
}

#[test]
fn a_resumed_run_shows_where_it_resumed() {
    use lrtop::metrics::Record;
    use lrtop::session::{MonitorSetup, Session};
    let mut session = Session::new(MonitorSetup::default());
    let run = session.add_run("resumed.jsonl".into(), None);
    let rec = |s: u64| Record {
        step: Some(s),
        lr: Some(0.01),
        loss: Some(2.0 / (s as f64).sqrt()),
        ..Default::default()
    };
    let records: Vec<Record> = (1..=120).chain(80..=200).map(rec).collect();
    session.apply(lrtop::ingest::SourceEvent::Records { run, records }.into());
    assert_eq!(session.runs[run].resumed_at, [80]);
    let mut app = App::new(session, Theme::default(), "t".into());
    let screen = render(&mut app, 120, 30);
    assert!(screen.contains("resumed @80"), "{screen}");
}

#[test]
fn eval_loss_is_drawn_on_the_loss_chart() {
    let mut app = app();
    let screen = render(&mut app, 200, 60);
    assert!(screen.contains("with eval loss"), "{screen}");
}

/// One run of 50 steps, read at once (every record arrives at the same
/// instant); `time`: whether the log writes times.
fn one_run(label: &str, time: bool) -> Session {
    let mut session = Session::new(MonitorSetup::default());
    let run = session.add_run(label.into(), None);
    let records: Vec<Record> = (1..=50u64)
        .map(|step| Record {
            step: Some(step),
            time: time.then_some(1_000_000.0 + step as f64),
            lr: Some(0.01),
            loss: Some(2.0 / step as f64),
            ..Default::default()
        })
        .collect();
    session.push_records(run, &records, 1_000_000.0);
    session
}

fn one_run_app(session: Session) -> App {
    let mut app = App::new(session, Theme::default(), "lrtop attach · 1 run".into());
    app.now = 1_000_001.0;
    app
}

#[test]
fn a_time_axis_over_a_log_without_times_says_so() {
    let mut app = one_run_app(one_run("untimed.jsonl", false));
    app.view.x_axis = lrtop::metrics::XAxis::RelativeTime;
    let screen = render(&mut app, 120, 40);
    assert!(
        screen.contains("no timestamps in this log: x shows steps or epochs"),
        "{screen}"
    );
    assert!(screen.contains("no timestamps"), "{screen}");
    // On the step axis, the same log is drawn.
    app.view.x_axis = lrtop::metrics::XAxis::Step;
    let screen = render(&mut app, 120, 40);
    assert!(!screen.contains("no timestamps"), "{screen}");
}

#[test]
fn a_finished_file_shows_no_live_rate_and_no_eta() {
    let mut session = one_run("done.jsonl", true);
    session.runs[0].total_steps = Some(100);
    session.runs[0].status = RunStatus::Done;
    let mut app = one_run_app(session);
    let screen = render(&mut app, 160, 48);
    assert!(
        screen.contains("steps/s"),
        "the run's average pace stays:\n{screen}"
    );
    assert!(!screen.contains("rec/s"), "{screen}");
    assert!(!screen.contains("ETA"), "{screen}");
}

#[test]
fn the_status_line_keeps_state_step_and_loss_at_80_columns_and_names_the_worst_alert() {
    let mut app = app();
    let narrow = render(&mut app, 80, 24);
    let last = narrow.lines().last().unwrap();
    assert!(
        last.contains("following") && last.contains("step 300/600") && last.contains("loss 0.3706"),
        "{last}"
    );
    let wide = render(&mut app, 200, 60);
    let last = wide.lines().last().unwrap();
    // The newest of the critical alerts.
    assert!(last.contains("✖ [lr20.jsonl] loss is NaN"), "{last}");
    let middle = render(&mut app, 110, 30);
    let last = middle.lines().last().unwrap();
    assert!(last.contains("✖ [lr20.jsonl] loss"), "{last}");
    assert!(last.contains('…'), "a message cut short says so: {last}");
}

#[test]
fn help_scrolls_when_the_terminal_is_smaller_than_it() {
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    let key = |code| KeyEvent::new(code, KeyModifiers::NONE);
    let mut app = app();
    app.on_key(key(KeyCode::Char('?')));
    let last_row = "scroll the alerts pane";
    let screen = render(&mut app, 80, 12);
    assert!(screen.contains("(↑↓ scroll)"), "{screen}");
    assert!(!screen.contains(last_row), "{screen}");
    app.on_key(key(KeyCode::PageDown));
    app.on_key(key(KeyCode::PageDown));
    let screen = render(&mut app, 80, 12);
    assert!(app.view.help, "scrolling keeps the help open");
    assert!(screen.contains(last_row), "{screen}");
    assert!(!screen.contains("this help"), "{screen}");
    // Tall enough: everything at once, no scroll hint.
    let screen = render(&mut app, 100, 40);
    assert!(screen.contains("this help") && screen.contains(last_row));
    assert!(!screen.contains("scroll)"), "{screen}");
}

#[test]
fn help_lists_every_key_the_handler_knows_from_one_table() {
    use lrtop::tui::keys;
    let mut app = app();
    app.extra_keys = keys::help_rows(lrtop::tui::train_view::KEYS);
    app.view.help = true;
    let screen = render(&mut app, 120, 60);
    for (keys, what) in keys::help_rows(keys::DASHBOARD)
        .into_iter()
        .chain(keys::help_rows(lrtop::tui::train_view::KEYS))
    {
        assert!(
            screen.contains(&format!(" {keys} ")) && screen.contains(what),
            "{keys:?} {what:?} missing:\n{screen}"
        );
    }
}

#[test]
fn cyclic_lr_80x24() {
    insta::assert_snapshot!(render(&mut cyclic_app(), 80, 24));
}

#[test]
fn cyclic_lr_200x60() {
    insta::assert_snapshot!(render(&mut cyclic_app(), 200, 60));
}

/// Alerts of every level, logged in an order that is not the pane's:
/// critical first, then newest.
fn mixed_alerts_app() -> App {
    use lrtop::monitor::{Alert, AlertKind, Level};
    let mut app = app();
    app.session.alerts.clear();
    let alerts = [
        (
            Level::Info,
            AlertKind::Plateau,
            40,
            "loss has been flat for 200 steps",
        ),
        (
            Level::Critical,
            AlertKind::Divergence,
            120,
            "loss is NaN: the run has diverged",
        ),
        (
            Level::Warn,
            AlertKind::Spike,
            150,
            "loss spiked to 4.1x its recent median",
        ),
        (
            Level::Info,
            AlertKind::Plateau,
            260,
            "loss has been flat for 100 steps",
        ),
        (
            Level::Critical,
            AlertKind::Divergence,
            90,
            "grad norm is inf: the run has diverged",
        ),
    ];
    for (level, kind, step, message) in alerts {
        app.session.alerts.push((
            0,
            Alert::new(level, kind, Some(step), message.to_string(), ""),
        ));
    }
    app
}

#[test]
fn alerts_sorted_80x24() {
    let screen = render(&mut mixed_alerts_app(), 80, 24);
    insta::assert_snapshot!(screen);
}

#[test]
fn alerts_sorted_200x60() {
    let screen = render(&mut mixed_alerts_app(), 200, 60);
    let at = |needle: &str| {
        screen
            .find(needle)
            .unwrap_or_else(|| panic!("{needle}:\n{screen}"))
    };
    // Critical first (the newer of the two on top), then warning, then info.
    assert!(
        at("step 90: grad norm") < at("step 120: loss is NaN"),
        "{screen}"
    );
    assert!(
        at("is NaN") < at("spiked")
            && at("spiked") < at("flat for 100")
            && at("flat for 100") < at("flat for 200"),
        "{screen}"
    );
    insta::assert_snapshot!(screen);
}

#[test]
fn the_alerts_pane_scrolls_with_keys_and_the_mouse_wheel() {
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseEvent, MouseEventKind};
    use lrtop::monitor::{Alert, AlertKind, Level};
    let key = |code| KeyEvent::new(code, KeyModifiers::NONE);
    let mut app = app();
    app.session.alerts.clear();
    for i in 0..100u64 {
        app.session.alerts.push((
            0,
            Alert::new(
                Level::Info,
                AlertKind::Plateau,
                Some(i),
                format!("note number {i:03}"),
                "",
            ),
        ));
    }
    let screen = render(&mut app, 200, 60);
    assert!(
        screen.contains("note number 099"),
        "newest on top:\n{screen}"
    );
    assert!(
        screen.lines().last().unwrap().contains("note number 099"),
        "the status line names the newest of the worst alerts:\n{screen}"
    );
    assert!(!screen.contains("note number 000"), "{screen}");
    app.on_key(key(KeyCode::PageDown));
    let screen = render(&mut app, 200, 60);
    assert!(screen.contains("↑ 5 more (PgUp)"), "{screen}");
    assert!(!screen.contains("step 99: note number 099") && screen.contains("note number 094"));
    // The wheel over the pane moves it one alert at a time.
    let pane = app.hitboxes.alerts.expect("the alerts pane was drawn");
    let wheel = |kind| MouseEvent {
        kind,
        column: pane.x + 2,
        row: pane.y + 2,
        modifiers: KeyModifiers::NONE,
    };
    app.on_mouse(wheel(MouseEventKind::ScrollDown));
    let screen = render(&mut app, 200, 60);
    assert!(screen.contains("↑ 6 more"), "{screen}");
    for _ in 0..100 {
        app.on_key(key(KeyCode::PageDown));
    }
    let screen = render(&mut app, 200, 60);
    assert!(
        screen.contains("note number 000"),
        "scrolls to the oldest:\n{screen}"
    );
    for _ in 0..100 {
        app.on_mouse(wheel(MouseEventKind::ScrollUp));
    }
    let screen = render(&mut app, 200, 60);
    assert!(screen.contains("step 99: note number 099") && !screen.contains("more (PgUp)"));
}

#[test]
fn metric_labels_in_the_stats_panel_are_unique_at_any_width() {
    let mut session = one_run("conf.jsonl", true);
    let evals: Vec<Record> = (1..=5u64)
        .map(|i| Record {
            step: Some(i * 10),
            extra: vec![
                ("eval_confidence_low".into(), 0.1 * i as f64),
                ("eval_confidence_high".into(), 0.2 * i as f64),
            ],
            ..Default::default()
        })
        .collect();
    session.push_records(0, &evals, 1_000_000.0);
    let mut app = one_run_app(session);
    for (width, height) in [(80, 24), (100, 30), (200, 60)] {
        let screen = render(&mut app, width, height);
        let rows: Vec<&str> = screen
            .lines()
            .filter(|l| l.contains("eval_"))
            .map(|l| {
                let at = l.find("eval_").unwrap();
                l[at..].split_whitespace().next().unwrap()
            })
            .collect();
        let mut unique = rows.clone();
        unique.sort();
        unique.dedup();
        assert!(rows.len() >= 2, "{width}x{height}:\n{screen}");
        assert_eq!(
            unique.len(),
            rows.len(),
            "{width}x{height}: {rows:?}\n{screen}"
        );
    }
}

/// A run whose evals log a loss, an accuracy and a runtime in seconds.
fn eval_scales_app() -> App {
    let mut session = one_run("evals.jsonl", true);
    let evals: Vec<Record> = (1..=10u64)
        .map(|i| Record {
            step: Some(i * 5),
            extra: vec![
                ("eval_loss".into(), 2.0 / i as f64),
                ("eval_accuracy".into(), 0.5 + 0.04 * i as f64),
                ("eval_runtime".into(), 300.0 + i as f64),
            ],
            ..Default::default()
        })
        .collect();
    session.push_records(0, &evals, 1_000_000.0);
    let mut app = one_run_app(session);
    app.view.third = lrtop::tui::app::ThirdPanel::Eval;
    app
}

#[test]
fn the_eval_chart_has_a_legend_and_leaves_other_scales_out() {
    let mut app = eval_scales_app();
    let screen = render(&mut app, 120, 40);
    let title = screen
        .lines()
        .find(|l| l.contains("┌ eval "))
        .unwrap_or_else(|| panic!("{screen}"));
    assert!(
        title.contains("━ eval_loss") && title.contains("━ eval_accuracy"),
        "{title}"
    );
    assert!(title.contains("other scales: eval_runtime (g)"), "{title}");
    // The y axis is the loss's, not the runtime's hundreds.
    let below: Vec<&str> = screen
        .lines()
        .skip_while(|l| !l.contains("┌ eval "))
        .collect();
    assert!(
        !below.iter().any(|l| l.contains("300") || l.contains("200")),
        "{screen}"
    );
    // `g` reaches the runtime on its own axis.
    let choices = app.picker_choices();
    assert!(choices.contains(&lrtop::tui::app::ThirdPanel::Metric("eval_runtime".into())));
}

#[test]
fn eval_chart_80x24() {
    let mut app = eval_scales_app();
    insta::assert_snapshot!(render(&mut app, 80, 24));
}

#[test]
fn eval_chart_200x60() {
    let mut app = eval_scales_app();
    insta::assert_snapshot!(render(&mut app, 200, 60));
}

#[test]
fn without_colours_runs_are_told_apart_by_markers() {
    let mut app = App::new(
        session(),
        Theme::monochrome(),
        "lrtop attach · 2 runs".into(),
    );
    app.now = 1_000_031.0;
    let screen = render(&mut app, 120, 40);
    assert!(
        screen.contains("1 ⠤ cosine.jsonl") && screen.contains("2 • lr20.jsonl"),
        "the runs list shows each run's marker:\n{screen}"
    );
    // The second run's line is drawn in its marker, on the charts.
    let charts: String = screen.lines().take(20).collect();
    assert!(charts.matches('•').count() > 10, "{screen}");
    // With colours, one marker for all and colour squares in the list.
    let mut app = self::app();
    let screen = render(&mut app, 120, 40);
    assert!(screen.contains("1 ■ cosine.jsonl"), "{screen}");
    assert!(!screen.contains('•'), "{screen}");
}

#[test]
fn long_run_names_are_cut_with_an_ellipsis_never_mid_word() {
    let name = "torch_cyclic_triangular2_with_a_long_name.jsonl";
    let mut app = one_run_app(one_run(name, true));
    app.view.help = true;
    for (width, height) in [(80, 24), (120, 36)] {
        let screen = render(&mut app, width, height);
        for line in screen.lines().filter(|l| l.contains("torch_cyc")) {
            let at = line.find("torch_cyc").unwrap();
            let shown: String = line[at..].chars().take(name.chars().count()).collect();
            assert!(
                shown == name || shown.contains('…'),
                "{width}x{height}: {line}\n{screen}"
            );
        }
        // Help rows too: cut, but with an ellipsis.
        for line in screen.lines().filter(|l| l.contains("y range of loss")) {
            assert!(line.contains("/ all") || line.contains('…'), "{line}");
        }
    }
}

#[test]
fn a_long_eval_legend_fits_its_title_and_still_says_what_is_left_out() {
    let mut session = one_run("whisper.json", true);
    let evals: Vec<Record> = (1..=10u64)
        .map(|i| Record {
            step: Some(i * 5),
            extra: vec![
                ("eval_loss".into(), 2.0 / i as f64),
                ("eval_samples_per_second".into(), 2.5),
                ("eval_steps_per_second".into(), 0.3),
                ("eval_wer".into(), 0.5),
                ("eval_runtime".into(), 1700.0),
            ],
            ..Default::default()
        })
        .collect();
    session.push_records(0, &evals, 1_000_000.0);
    let mut app = one_run_app(session);
    app.view.third = lrtop::tui::app::ThirdPanel::Eval;
    for width in [80, 120, 200] {
        let screen = render(&mut app, width, 36);
        let title = screen
            .lines()
            .find(|l| l.contains("┌ eval "))
            .unwrap_or_else(|| panic!("{screen}"));
        assert!(title.contains("(g) "), "{width}: {title}");
        if width >= 120 {
            assert!(title.contains("other scales"), "{width}: {title}");
            assert!(title.matches('━').count() >= 4, "{width}: {title}");
        } else {
            assert!(title.contains("━ eval_loss +3"), "{width}: {title}");
        }
    }
}

#[test]
fn runs_whose_lrs_differ_by_more_than_100x_get_a_log_lr_axis() {
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    // Peaks of 3e-3 and 20: on one linear axis the first is a line at 0.
    let mut app = app();
    assert!(app.lr_shown_log());
    let screen = render(&mut app, 120, 40);
    assert!(screen.contains("┌ learning rate log"), "{screen}");
    // Hiding the run at 20 leaves one scale: linear again.
    app.on_key(KeyEvent::new(KeyCode::Char('2'), KeyModifiers::NONE));
    assert!(!app.lr_shown_log());
    app.on_key(KeyEvent::new(KeyCode::Char('2'), KeyModifiers::NONE));
    // `l` takes over from the automatic choice.
    app.on_key(KeyEvent::new(KeyCode::Char('l'), KeyModifiers::NONE));
    assert_eq!(app.lr_shown_log(), app.view.log_y);
}

#[test]
fn a_training_run_shows_its_trainable_and_total_parameters() {
    use lrtop::session::{MonitorSetup, Session, SessionEvent};
    use lrtop::train::trainer::{ParamCount, TrainEvent};
    let policy = lrtop::policy::Policy::parse("FIX(k0=0.1)").unwrap();
    let mut app = App::new(
        Session::new(MonitorSetup::default()),
        Theme::default(),
        "t".into(),
    );
    app.train = Some(lrtop::tui::train_view::TrainView::new(100, &policy));
    let start = |attempt, trainable| {
        SessionEvent::Train(TrainEvent::RunStarted {
            attempt,
            policy: policy.clone(),
            log: format!("runs/{attempt}.jsonl").into(),
            steps: 100,
            params: ParamCount {
                trainable,
                total: 1_240_000,
            },
        })
    };
    app.apply(start(0, 6_144));
    let screen = render(&mut app, 120, 36);
    assert!(
        screen.contains("trainable 6.14k of 1.24M (0.50%)"),
        "{screen}"
    );
    // A model trained whole says just its size.
    app.apply(start(1, 1_240_000));
    app.view.selected_run = 1;
    let screen = render(&mut app, 120, 36);
    assert!(screen.contains("params 1.24M"), "{screen}");
    assert!(!screen.contains("trainable"), "{screen}");
}
