//! The dashboard in a real terminal: the binary runs inside tmux (driven
//! with send-keys, read with capture-pane). Records appended after start
//! reach the screen quickly, `?` shows help, `q`/Ctrl-C/SIGTERM/SIGINT and
//! a panic all leave the terminal as it was (alternate screen left, cursor
//! shown, mouse reporting off, cooked mode), any window size is drawn
//! without a panic, `NO_COLOR` gives no colour codes, 16-colour and
//! `screen` terminals work, and a shell sees the documented exit codes.
//!
//! Skipped, with a note, when tmux is not installed.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

const PATIENCE: Duration = Duration::from_secs(20);
/// Printed by the shell in the pane once lrtop has exited, with its status.
const MARKER: &str = "LRTOP-EXITED";

fn have_tmux() -> bool {
    let ok = Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("note: tmux is not installed; terminal test skipped");
    }
    ok
}

/// One tmux server (own socket) with one window running `sh`.
struct Tmux {
    socket: String,
    dir: tempfile::TempDir,
}

impl Tmux {
    fn start(cols: u16, rows: u16) -> Tmux {
        static N: AtomicUsize = AtomicUsize::new(0);
        let socket = format!(
            "lrtop-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        let dir = tempfile::tempdir().unwrap();
        let t = Tmux { socket, dir };
        // A plain shell with a fixed prompt, no rc files; a fixed window size.
        let out = t
            .cmd()
            .args(["-f", "/dev/null", "new-session", "-d", "-s", "t"])
            .args(["-x", &cols.to_string(), "-y", &rows.to_string()])
            .args([
                "-e",
                "PS1=$ ",
                "-e",
                "LRTOP_CONFIG=/nonexistent/lrtop/config.toml",
            ])
            .args(["env", "-u", "NO_COLOR", "-u", "TMUX", "sh"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "tmux: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        t.tmux(&["set-option", "-g", "window-size", "manual"]);
        t.tmux(&["set-option", "-g", "remain-on-exit", "on"]);
        t
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.socket]);
        c
    }

    fn tmux(&self, args: &[&str]) -> Output {
        let out = self.cmd().args(args).output().unwrap();
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Types a line into the shell.
    fn type_line(&self, line: &str) {
        self.tmux(&["send-keys", "-t", "t", "-l", line]);
        self.tmux(&["send-keys", "-t", "t", "Enter"]);
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "t"];
        args.extend_from_slice(keys);
        self.tmux(&args);
    }

    /// Runs lrtop in the pane through a shell that records its pid and,
    /// afterwards, its exit status and `stty -a`.
    fn run_lrtop(&self, env: &str, args: &str) {
        let pid = self.path("pid");
        let stty = self.path("stty");
        let bin = env!("CARGO_BIN_EXE_lrtop");
        self.type_line(&format!(
            "clear; {env} sh -c 'echo $$ > {pid}; exec {bin} {args}'; echo {MARKER} $?; stty -a > {stty}",
            pid = pid.display(),
            stty = stty.display(),
        ));
    }

    fn lrtop_pid(&self) -> u32 {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(pid) = fs::read_to_string(self.path("pid"))
                .ok()
                .and_then(|s| s.trim().parse().ok())
            {
                return pid;
            }
            assert!(Instant::now() < deadline, "lrtop did not start");
            thread::sleep(Duration::from_millis(10));
        }
    }

    fn capture(&self) -> String {
        String::from_utf8_lossy(&self.tmux(&["capture-pane", "-p", "-t", "t"]).stdout).into_owned()
    }

    /// The screen with its escape sequences (colours and attributes).
    fn capture_escapes(&self) -> String {
        String::from_utf8_lossy(&self.tmux(&["capture-pane", "-p", "-e", "-t", "t"]).stdout)
            .into_owned()
    }

    fn display(&self, format: &str) -> String {
        let out = self.tmux(&["display-message", "-p", "-t", "t", format]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Waits until the screen shows `needle`; the time it took.
    fn wait_for(&self, needle: &str) -> Duration {
        let started = Instant::now();
        let deadline = started + PATIENCE;
        loop {
            let screen = self.capture();
            if screen.contains(needle) {
                return started.elapsed();
            }
            assert!(
                Instant::now() < deadline,
                "'{needle}' did not appear; screen:\n{screen}"
            );
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits for lrtop to exit; its exit status as the shell saw it.
    fn wait_exit(&self) -> i32 {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let screen = self.capture();
            if let Some(code) = screen
                .lines()
                .find_map(|l| l.trim().strip_prefix(&format!("{MARKER} ")))
                .and_then(|c| c.trim().parse().ok())
                && self.path("stty").exists()
                && fs::metadata(self.path("stty")).is_ok_and(|m| m.len() > 0)
            {
                return code;
            }
            assert!(
                Instant::now() < deadline,
                "lrtop did not exit; screen:\n{screen}"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// After lrtop exited: the terminal is as the shell had it.
    fn assert_restored(&self) {
        assert_eq!(
            self.display("#{alternate_on}"),
            "0",
            "still in the alternate screen"
        );
        assert_eq!(self.display("#{cursor_flag}"), "1", "cursor left hidden");
        assert_eq!(
            self.display("#{mouse_any_flag}#{mouse_button_flag}#{mouse_sgr_flag}"),
            "000",
            "mouse reporting left on"
        );
        let stty = fs::read_to_string(self.path("stty")).unwrap();
        let words: Vec<&str> = stty.split_whitespace().collect();
        for flag in ["icanon", "echo", "isig", "icrnl", "opost"] {
            assert!(
                words.contains(&flag),
                "terminal left with -{flag} (raw mode):\n{stty}"
            );
        }
        // The shell's own output shows: the screen is the normal one again.
        assert!(self.capture().contains(MARKER));
    }

    fn alive(&self, pid: u32) -> bool {
        Path::new(&format!("/proc/{pid}")).exists()
            && !fs::read_to_string(format!("/proc/{pid}/stat"))
                .unwrap_or_default()
                .contains(") Z ")
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd().arg("kill-server").output();
    }
}

fn record(step: u64, loss: f64) -> String {
    format!(
        "{{\"step\": {step}, \"loss\": {loss}, \"learning_rate\": 0.001, \"grad_norm\": 0.5}}\n"
    )
}

fn write_log(path: &Path, steps: std::ops::RangeInclusive<u64>) {
    let text: String = steps.map(|s| record(s, 2.0 / s as f64)).collect();
    fs::write(path, text).unwrap();
}

fn append(path: &Path, text: &str) {
    let mut f = OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f.flush().unwrap();
}

fn signal(pid: u32, name: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{name} {pid}");
}

#[test]
fn attach_shows_new_records_fast_help_on_question_mark_and_q_restores() {
    if !have_tmux() {
        return;
    }
    let t = Tmux::start(120, 40);
    let log = t.path("run.jsonl");
    write_log(&log, 1..=20);
    t.run_lrtop("", &format!("attach {}", log.display()));
    t.wait_for("lrtop attach");
    t.wait_for("step 20");
    assert_eq!(
        t.display("#{alternate_on}"),
        "1",
        "the dashboard uses the alternate screen"
    );
    // Write-to-screen latency of appended records: the stats panel shows
    // the last loss.
    let mut latencies = Vec::new();
    for (i, loss) in [0.3141, 0.2718, 0.1618, 0.1414, 0.1732].iter().enumerate() {
        thread::sleep(Duration::from_millis(150));
        append(&log, &record(21 + i as u64, *loss));
        latencies.push(t.wait_for(&format!("{loss}")));
    }
    let mut sorted = latencies.clone();
    sorted.sort();
    eprintln!(
        "write-to-screen latency over {} appends: median {:?}, max {:?}",
        sorted.len(),
        sorted[sorted.len() / 2],
        sorted[sorted.len() - 1]
    );
    assert!(
        sorted[sorted.len() / 2] < Duration::from_secs(1),
        "records take {:?} to show",
        sorted[sorted.len() / 2]
    );
    t.keys(&["?"]);
    t.wait_for("this help (↑↓ scroll it, other keys close it)");
    t.keys(&["Escape"]);
    thread::sleep(Duration::from_millis(200));
    t.keys(&["q"]);
    assert_eq!(t.wait_exit(), 0);
    t.assert_restored();
}

#[test]
fn ctrl_c_restores_the_terminal() {
    if !have_tmux() {
        return;
    }
    let t = Tmux::start(100, 30);
    let log = t.path("run.jsonl");
    write_log(&log, 1..=50);
    t.run_lrtop("", &format!("attach {}", log.display()));
    t.wait_for("step 50");
    t.keys(&["C-c"]);
    assert_eq!(t.wait_exit(), 0);
    t.assert_restored();
}

#[test]
fn sigterm_and_sigint_restore_the_terminal() {
    if !have_tmux() {
        return;
    }
    for sig in ["TERM", "INT"] {
        let t = Tmux::start(100, 30);
        let log = t.path("run.jsonl");
        write_log(&log, 1..=50);
        t.run_lrtop("", &format!("attach {}", log.display()));
        t.wait_for("step 50");
        signal(t.lrtop_pid(), sig);
        assert_eq!(t.wait_exit(), 0, "SIG{sig} quits like q");
        t.assert_restored();
    }
}

#[test]
fn sigterm_restores_the_terminal_of_a_training_dashboard() {
    if !have_tmux() {
        return;
    }
    let t = Tmux::start(120, 40);
    let log = t.path("train.jsonl");
    t.run_lrtop(
        "",
        &format!("train --steps 1000000 --log {}", log.display()),
    );
    t.wait_for("lrtop train");
    // Let it train a little.
    let deadline = Instant::now() + PATIENCE;
    while fs::read_to_string(&log).map_or(0, |s| s.lines().count()) < 100 {
        assert!(Instant::now() < deadline, "no training records");
        thread::sleep(Duration::from_millis(20));
    }
    signal(t.lrtop_pid(), "TERM");
    t.wait_exit();
    t.assert_restored();
    let text = fs::read_to_string(&log).unwrap();
    assert!(text.ends_with('\n'), "the log ends in a partial line");
}

/// A 100x30 pane attached to a 5-step log, with `env` set for lrtop.
#[cfg(debug_assertions)]
fn attach_short_log(env: &str) -> Tmux {
    let t = Tmux::start(100, 30);
    let log = t.path("run.jsonl");
    write_log(&log, 1..=5);
    t.run_lrtop(env, &format!("attach {}", log.display()));
    t
}

#[test]
#[cfg(debug_assertions)]
fn a_frozen_dashboard_still_ends_on_sigterm_and_restores_the_terminal() {
    if !have_tmux() {
        return;
    }
    // Test builds only: the event loop blocks for good after its first
    // frame, so only the signal watchdog can end it.
    let t = attach_short_log("LRTOP_TEST_FREEZE=render");
    t.wait_for("lrtop attach");
    let started = Instant::now();
    signal(t.lrtop_pid(), "TERM");
    let code = t.wait_exit();
    assert_eq!(code, 128 + 15, "exits as killed by SIGTERM");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    t.assert_restored();
}

#[test]
#[cfg(debug_assertions)]
fn a_panic_restores_the_terminal() {
    if !have_tmux() {
        return;
    }
    // Test builds only: the event loop panics after its first frame.
    let t = attach_short_log("LRTOP_TEST_PANIC=1 RUST_BACKTRACE=0");
    let code = t.wait_exit();
    assert_eq!(code, 101, "a panic exits with 101");
    t.assert_restored();
    let screen = t.capture();
    assert!(
        screen.contains("LRTOP_TEST_PANIC is set"),
        "the panic message is readable:\n{screen}"
    );
}

#[test]
fn esc_and_a_key_read_together_are_still_two_keys() {
    if !have_tmux() {
        return;
    }
    let t = Tmux::start(100, 30);
    let log = t.path("run.jsonl");
    write_log(&log, 1..=20);
    // Without job control, so that a stopped lrtop keeps the terminal.
    t.type_line("set +m");
    t.run_lrtop("", &format!("attach {}", log.display()));
    t.wait_for("step 20");
    let pid = t.lrtop_pid();
    let help = "this help (↑↓ scroll it, other keys close it)";
    t.keys(&["?"]);
    t.wait_for(help);
    // A reader that falls behind (a busy CPU, a slow link) gets Esc and the
    // next key in one read, which crossterm reports as Alt+key.
    signal(pid, "STOP");
    t.keys(&["Escape"]);
    t.keys(&["?"]);
    thread::sleep(Duration::from_millis(200));
    signal(pid, "CONT");
    thread::sleep(Duration::from_millis(500));
    assert!(t.alive(pid), "lrtop quit:\n{}", t.capture());
    let screen = t.capture();
    assert!(
        screen.contains(help),
        "Esc closed the help and ? opened it again:\n{screen}"
    );
    t.keys(&["Escape"]);
    thread::sleep(Duration::from_millis(200));
    t.keys(&["q"]);
    assert_eq!(t.wait_exit(), 0);
    t.assert_restored();
}

#[test]
fn any_window_size_is_drawn_without_a_panic() {
    if !have_tmux() {
        return;
    }
    let t = Tmux::start(80, 24);
    let log = t.path("run.jsonl");
    write_log(&log, 1..=300);
    t.run_lrtop("", &format!("attach {}", log.display()));
    t.wait_for("step 300");
    let pid = t.lrtop_pid();
    let sizes = [
        (1, 1),
        (10, 3),
        (80, 24),
        (2, 50),
        (200, 60),
        (1, 1),
        (37, 11),
        (120, 40),
    ];
    for (i, (cols, rows)) in sizes.into_iter().enumerate() {
        t.tmux(&[
            "resize-window",
            "-t",
            "t",
            "-x",
            &cols.to_string(),
            "-y",
            &rows.to_string(),
        ]);
        assert_eq!(
            t.display("#{window_width}x#{window_height}"),
            format!("{cols}x{rows}")
        );
        // New records while small, to draw them at that size too.
        append(&log, &record(301 + i as u64, 0.5));
        thread::sleep(Duration::from_millis(250));
        assert!(
            t.alive(pid),
            "lrtop died at {cols}x{rows}:\n{}",
            t.capture()
        );
        // Help at a tiny size too.
        t.keys(&["?"]);
        thread::sleep(Duration::from_millis(100));
        t.keys(&["Escape"]);
    }
    t.tmux(&["resize-window", "-t", "t", "-x", "100", "-y", "30"]);
    // Drawn again at a usable size (the status line keeps its key hint).
    t.wait_for("? help");
    t.keys(&["q"]);
    assert_eq!(t.wait_exit(), 0);
    t.assert_restored();
}

/// SGR parameters of every escape sequence on the screen.
fn sgr_codes(screen: &str) -> Vec<String> {
    let mut codes = Vec::new();
    let mut rest = screen;
    while let Some(at) = rest.find("\x1b[") {
        rest = &rest[at + 2..];
        if let Some(end) = rest.find('m') {
            codes.push(rest[..end].to_string());
            rest = &rest[end..];
        }
    }
    codes
}

/// Colours an SGR sequence sets from the palette (38;5;n / 48;5;n); an RGB
/// colour (38;2;r;g;b) counts as 256.
fn palette_colours(params: &str) -> Vec<u32> {
    let p: Vec<&str> = params.split(';').collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < p.len() {
        match (p[i], p.get(i + 1)) {
            ("38" | "48", Some(&"5")) => {
                out.push(p.get(i + 2).and_then(|n| n.parse().ok()).unwrap_or(256));
                i += 3;
            }
            ("38" | "48", Some(&"2")) => {
                out.push(256);
                i += 5;
            }
            _ => i += 1,
        }
    }
    out
}

/// Whether SGR parameters set a foreground or background colour.
fn sets_colour(params: &str) -> bool {
    let parts: Vec<&str> = params.split(';').collect();
    parts.iter().any(|p| {
        matches!(
            p.parse::<u32>(),
            Ok(30..=38 | 40..=48 | 90..=97 | 100..=107)
        )
    })
}

fn dashboard_escapes(env: &str) -> String {
    let t = Tmux::start(100, 30);
    let log = t.path("run.jsonl");
    write_log(&log, 1..=100);
    t.run_lrtop(env, &format!("attach {}", log.display()));
    t.wait_for("step 100");
    thread::sleep(Duration::from_millis(200));
    let screen = t.capture_escapes();
    t.keys(&["q"]);
    assert_eq!(t.wait_exit(), 0);
    t.assert_restored();
    screen
}

#[test]
fn no_color_gives_no_colour_codes() {
    if !have_tmux() {
        return;
    }
    let coloured = dashboard_escapes("");
    assert!(
        sgr_codes(&coloured).iter().any(|c| sets_colour(c)),
        "the default theme shows colours"
    );
    let plain = dashboard_escapes("NO_COLOR=1");
    let colours: Vec<String> = sgr_codes(&plain)
        .into_iter()
        .filter(|c| sets_colour(c))
        .collect();
    assert!(
        colours.is_empty(),
        "NO_COLOR=1 still sets colours: {colours:?}"
    );
    assert!(plain.contains("lrtop attach"));
}

#[test]
fn sixteen_colour_and_screen_terminals_work() {
    if !have_tmux() {
        return;
    }
    for term in ["xterm-16color", "screen", "linux"] {
        let screen = dashboard_escapes(&format!("TERM={term}"));
        assert!(screen.contains("lrtop attach"), "{term}");
        if term != "screen" {
            // A 16-colour terminal gets the 16 ANSI colours only: no RGB
            // codes, and palette codes (crossterm writes even the basic
            // colours as 38;5;n) only below 16.
            let rich: Vec<String> = sgr_codes(&screen)
                .into_iter()
                .filter(|c| !palette_colours(c).iter().all(|&n| n < 16))
                .collect();
            assert!(
                rich.is_empty(),
                "TERM={term} gets colours beyond the 16 ANSI ones: {:?}",
                &rich[..rich.len().min(5)]
            );
        }
    }
}

/// Charts and panels on the real binary at 80x24: a CyclicLR peak of 0.2
/// is the LR chart's top label, the alerts pane counts and shows the
/// critical alert first and the status line names it, a key closes the
/// help, and the terminal is restored.
#[test]
fn charts_and_panels_at_80x24_on_the_real_binary() {
    if !have_tmux() {
        return;
    }
    let t = Tmux::start(80, 24);
    let log = t.path("cyclic.jsonl");
    let mut text = String::new();
    for step in 1..=400u64 {
        // Triangular cycles of 100 steps between 0.001 and 0.2.
        let phase = (step % 100) as f64 / 50.0;
        let lr = 0.001 + 0.199 * if phase <= 1.0 { phase } else { 2.0 - phase };
        let loss = if step < 390 {
            format!("{}", 2.0 / (step as f64).sqrt())
        } else {
            "NaN".to_string()
        };
        text.push_str(&format!(
            "{{\"step\": {step}, \"loss\": {loss}, \"learning_rate\": {lr}}}\n"
        ));
    }
    fs::write(&log, text).unwrap();
    t.run_lrtop("", &format!("attach {} --no-follow", log.display()));
    t.wait_for("step 400");
    let screen = t.capture();
    assert!(
        screen
            .lines()
            .any(|l| l.starts_with("│0.2 ") || l.starts_with("│0.2│")),
        "the LR peak is the top label:\n{screen}"
    );
    assert!(screen.contains("┌ alerts ✖"), "{screen}");
    assert!(
        screen.lines().last().unwrap_or("").contains('✖'),
        "the status line shows the worst alert:\n{screen}"
    );
    t.keys(&["?"]);
    t.wait_for("this help");
    // The first key closes the help; the next one is the dashboard's.
    t.keys(&["q"]);
    thread::sleep(Duration::from_millis(200));
    assert!(!t.capture().contains("this help"));
    t.keys(&["q"]);
    assert_eq!(t.wait_exit(), 0, "a dashboard quit by the user exits 0");
    t.assert_restored();
}

/// The checkpoints in `dir`, by name.
fn checkpoints(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".safetensors"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn training_work_is_not_lost_to_a_key_at_80x24() {
    if !have_tmux() {
        return;
    }
    let t = Tmux::start(80, 24);
    let log = t.path("run.jsonl");
    let runs = t.path("runs");
    t.run_lrtop(
        &format!("cd {} &&", t.dir.path().display()),
        &format!("train --steps 100000000 --log {}", log.display()),
    );
    t.wait_for("lrtop train");
    let pid = t.lrtop_pid();
    // Two checkpoints: two files, named after the run and the step.
    t.keys(&["c"]);
    t.wait_for("checkpoint saved to");
    thread::sleep(Duration::from_millis(300));
    t.keys(&["c"]);
    let deadline = Instant::now() + PATIENCE;
    while checkpoints(&runs).len() < 2 {
        assert!(Instant::now() < deadline, "{:?}", checkpoints(&runs));
        thread::sleep(Duration::from_millis(20));
    }
    let names = checkpoints(&runs);
    assert!(names.iter().all(|n| n.starts_with("run-step")), "{names:?}");
    assert_ne!(names[0], names[1]);
    // Esc does not stop a training run; the first q asks, the second quits.
    t.keys(&["Escape"]);
    t.wait_for("Esc does not stop training");
    assert!(t.alive(pid), "Esc ended the training run");
    t.keys(&["q"]);
    t.wait_for("q again to stop and quit");
    assert!(t.alive(pid), "one q ended the training run");
    t.keys(&["q"]);
    assert_eq!(t.wait_exit(), 0, "stopped and quit by the user");
    t.assert_restored();
    assert!(fs::read_to_string(&log).unwrap().ends_with('\n'));
}

/// Exit codes a script sees, typed into a real shell at 80x24: a check of
/// a diverged log exits 3 and says which alert fired, `--fail-on never`
/// exits 0, a headless training run that diverges exits 4, and a healthy
/// log passes even with `--fail-on warn`.
#[test]
fn exit_codes_a_script_can_use_at_80x24() {
    if !have_tmux() {
        return;
    }
    let t = Tmux::start(80, 24);
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("sample-logs");
    let diverged = samples.join("torch_diverged_nan.jsonl");
    let healthy = samples.join("hf_trainer_cosine.jsonl");
    let bin = env!("CARGO_BIN_EXE_lrtop");
    let cases = [
        (
            format!("attach {} --no-follow --summary", diverged.display()),
            3,
        ),
        (
            format!(
                "attach {} --no-follow --headless --fail-on never",
                diverged.display()
            ),
            0,
        ),
        (
            format!(
                "attach {} --no-follow --summary --fail-on warn",
                healthy.display()
            ),
            0,
        ),
        (
            "train --headless --steps 100000 --optimizer sgd --policy 'FIX(k0=1000)'".to_string(),
            4,
        ),
    ];
    for (k, (args, want)) in cases.iter().enumerate() {
        let out = t.path(&format!("out{k}"));
        let err = t.path(&format!("err{k}"));
        t.type_line(&format!(
            "clear; cd {dir} && {bin} {args} > {out} 2> {err}; echo \"EXIT\"\"{k}= $?\"",
            dir = t.dir.path().display(),
            out = out.display(),
            err = err.display(),
        ));
        // Typed as "EXIT""0= ": only the shell's output has "EXIT0= ".
        t.wait_for(&format!("EXIT{k}= "));
        let screen = t.capture();
        let code: i32 = screen
            .lines()
            .find_map(|l| l.trim().strip_prefix(&format!("EXIT{k}= ")))
            .and_then(|c| c.trim().parse().ok())
            .unwrap_or_else(|| panic!("no exit status on the screen:\n{screen}"));
        let stderr = fs::read_to_string(&err).unwrap();
        assert_eq!(code, *want, "lrtop {args}\nstderr: {stderr}");
        match want {
            3 => assert!(stderr.contains("loss climbed to"), "{stderr}"),
            4 => assert!(stderr.contains("training diverged"), "{stderr}"),
            _ => assert!(!stderr.contains("error"), "{stderr}"),
        }
    }
}

/// `tune collect --watch`: the tune dashboard over a directory whose
/// trials run elsewhere (the emitted array's tasks, run here by hand as any
/// runner of commands would), updated as they end; the report on quitting.
#[test]
fn collect_watch_follows_trials_that_run_elsewhere() {
    if !have_tmux() {
        return;
    }
    let t = Tmux::start(120, 36);
    let bin = env!("CARGO_BIN_EXE_lrtop");
    let status = Command::new(bin)
        .current_dir(t.dir.path())
        .args(["tune", "--executor", "slurm", "--emit", "sweep"])
        .args(["--policy", "FIX(k0={0.05,0.1})", "--steps", "60"])
        .args(["--eval-every", "20", "--hidden", "32"])
        .output()
        .unwrap();
    assert!(status.status.success());
    let sweep = t.path("sweep");
    let task = |id: &str| {
        let out = Command::new("bash")
            .arg(sweep.join("run.sbatch"))
            .env("SLURM_ARRAY_TASK_ID", id)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    task("0");
    t.run_lrtop("", &format!("tune collect {} --watch", sweep.display()));
    t.wait_for("trials 1/2 done");
    assert!(t.capture().contains("queued"), "{}", t.capture());
    task("1");
    t.wait_for("trials 2/2 done");
    t.keys(&["q"]);
    assert_eq!(t.wait_exit(), 0);
    t.assert_restored();
    let screen = t.capture();
    assert!(
        screen.contains("2 ok") && screen.contains("best: #"),
        "{screen}"
    );
}
