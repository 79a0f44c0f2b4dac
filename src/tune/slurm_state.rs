//! What `lrtop tune collect` learns about a Slurm array's unfinished
//! trials: the status file each task writes (start, end, exit), the tail
//! of its output, the last step of its log, and what the scheduler says:
//! `squeue` for waiting and running tasks, `sacct` for ended ones, or
//! `scontrol` where the cluster keeps no accounting. Without any Slurm
//! command (collecting on a laptop) the files alone decide.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::manifest::Manifest;
use super::results::Trial;
use super::slurm::{TASKS, job_name};

/// How long one scheduler query may take before collect goes on without it.
const QUERY_TIMEOUT: Duration = Duration::from_secs(15);
/// Lines of a failed task's output shown with it.
const TAIL_LINES: usize = 6;

/// `trial-N.status`, as the job script writes it.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct TaskStatus {
    pub job: Option<String>,
    pub start: Option<f64>,
    pub end: Option<f64>,
    pub exit: Option<i32>,
    pub signal: Option<String>,
    pub cpus: Option<usize>,
    pub host: Option<String>,
}

impl TaskStatus {
    pub fn parse(text: &str) -> TaskStatus {
        let mut s = TaskStatus::default();
        for line in text.lines() {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let value = value.trim();
            let text = || Some(value.to_string()).filter(|v| !v.is_empty());
            match key.trim() {
                "job" => s.job = text(),
                "start" => s.start = value.parse().ok(),
                "end" => s.end = value.parse().ok(),
                "exit" => s.exit = value.parse().ok(),
                "signal" => s.signal = text(),
                "cpus" => s.cpus = value.parse().ok(),
                "host" => s.host = text(),
                _ => {}
            }
        }
        s
    }

    pub fn read(path: &Path) -> Option<TaskStatus> {
        std::fs::read_to_string(path)
            .ok()
            .map(|t| TaskStatus::parse(&t))
    }
}

/// The scheduler's state of each array task (`PENDING`, `RUNNING`,
/// `COMPLETED`, `FAILED`, `CANCELLED`, `OUT_OF_MEMORY`, `TIMEOUT`, …), by
/// array index; `None` when no Slurm command answers (collecting away
/// from the cluster), so that "not listed" cannot be read as "not running".
pub fn scheduler_states(job_name: &str) -> Option<HashMap<usize, String>> {
    let mut states = HashMap::new();
    let mut answered = false;
    // Ended tasks first, so that a task requeued and running again shows
    // as running. sacct lists today's jobs unless told to look further back.
    let sacct = run(&[
        "sacct",
        "-n",
        "-P",
        "-X",
        "-S",
        "now-60days",
        &format!("--name={job_name}"),
        "-o",
        "JobID,State",
    ]);
    if let Some(text) = sacct {
        answered = true;
        states.extend(parse_sacct(&text));
    }
    // Without accounting (or while it lags) the controller still knows
    // recent jobs; it fills in what sacct did not say.
    if let Some(text) = run(&["scontrol", "-o", "show", "job"]) {
        answered = true;
        for (index, state) in parse_scontrol(&text, job_name) {
            states.entry(index).or_insert(state);
        }
    }
    let squeue = run(&[
        "squeue",
        "-h",
        "-r",
        &format!("--name={job_name}"),
        "-o",
        "%K|%T",
    ]);
    if let Some(text) = squeue {
        answered = true;
        for line in text.lines() {
            if let Some((index, state)) = line.split_once('|')
                && let Ok(index) = index.trim().parse()
            {
                states.insert(index, state.trim().to_string());
            }
        }
    }
    answered.then_some(states)
}

/// `sacct -P -o JobID,State` lines: `12_3|COMPLETED`, `12_[4-7]|PENDING`,
/// `12_5|CANCELLED by 0`.
pub fn parse_sacct(text: &str) -> HashMap<usize, String> {
    let mut states = HashMap::new();
    for line in text.lines() {
        let Some((id, state)) = line.split_once('|') else {
            continue;
        };
        let Some((_, tasks)) = id.split_once('_') else {
            continue;
        };
        let tasks = tasks.trim_start_matches('[').trim_end_matches(']');
        let state = state.split_whitespace().next().unwrap_or("").to_string();
        for index in parse_indices(tasks) {
            states.insert(index, state.clone());
        }
    }
    states
}

/// `scontrol -o show job`: one job per line; an array's waiting tasks are
/// one record with `ArrayTaskId=1-3%1`.
pub fn parse_scontrol(text: &str, job_name: &str) -> HashMap<usize, String> {
    let mut states = HashMap::new();
    for line in text.lines() {
        let field = |key: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
        };
        if field("JobName") != Some(job_name) {
            continue;
        }
        let (Some(tasks), Some(state)) = (field("ArrayTaskId"), field("JobState")) else {
            continue;
        };
        for index in parse_indices(tasks) {
            states.insert(index, state.to_string());
        }
    }
    states
}

/// `1-3,5,7-9%2` → 1, 2, 3, 5, 7, 8, 9 (at most a million).
fn parse_indices(text: &str) -> Vec<usize> {
    let text = text.split('%').next().unwrap_or("");
    let mut out = Vec::new();
    for part in text.split(',') {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (a.trim().parse::<usize>(), b.trim().parse::<usize>()),
            None => (part.trim().parse(), part.trim().parse()),
        };
        if let (Ok(lo), Ok(hi)) = (lo, hi)
            && lo <= hi
            && hi - lo < 1_000_000
        {
            out.extend(lo..=hi);
        }
    }
    out
}

/// A command's stdout when it exits 0 within the timeout.
fn run(args: &[&str]) -> Option<String> {
    let mut child = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut stdout = child.stdout.take()?;
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut text);
        text
    });
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                let text = reader.join().ok()?;
                return status.success().then_some(text);
            }
            Ok(None) if started.elapsed() < QUERY_TIMEOUT => {
                std::thread::sleep(Duration::from_millis(20));
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

/// The last lines of a task's output, control characters removed.
fn tail(path: &Path) -> Option<String> {
    let text = std::fs::read(path).ok()?;
    let text = String::from_utf8_lossy(&text[text.len().saturating_sub(64 * 1024)..]);
    let lines: Vec<String> = text
        .lines()
        .map(|l| l.chars().filter(|c| !c.is_control()).collect::<String>())
        .filter(|l| !l.trim().is_empty())
        .collect();
    let from = lines.len().saturating_sub(TAIL_LINES);
    Some(lines[from..].join("\n")).filter(|t| !t.is_empty())
}

/// The last `step` of a JSONL training log.
fn last_step(path: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().rev().find_map(|line| {
        serde_json::from_str::<serde_json::Value>(line)
            .ok()?
            .get("step")?
            .as_u64()
    })
}

/// Replaces the `pending`/`started` status of trials without a result by
/// what their task files and the scheduler say; finished trials keep
/// theirs.
pub fn annotate(manifest: &Manifest, dir: &Path, trials: &mut [Trial]) {
    let needs_state = trials.iter().any(|t| !has_result(manifest, dir, t.index));
    let states = if needs_state {
        scheduler_states(&job_name(manifest))
    } else {
        None
    };
    annotate_with(manifest, dir, trials, states.as_ref());
}

/// [`annotate`] with the scheduler's states given (`None`: no scheduler
/// answered).
pub fn annotate_with(
    manifest: &Manifest,
    dir: &Path,
    trials: &mut [Trial],
    states: Option<&HashMap<usize, String>>,
) {
    for trial in trials.iter_mut() {
        if has_result(manifest, dir, trial.index) {
            continue;
        }
        let tasks = dir.join(TASKS);
        let status = TaskStatus::read(&tasks.join(format!("trial-{}.status", trial.index)));
        let output = tasks.join(format!("trial-{}.out", trial.index));
        let state = states.and_then(|s| s.get(&trial.index)).map(String::as_str);
        trial.scheduler = state.map(str::to_string);
        let log = manifest.trials.get(trial.index).map(|t| dir.join(&t.log));
        let (text, failed) = describe(status.as_ref(), state, states.is_some());
        trial.status = text;
        if failed {
            trial.output_tail = tail(&output);
            // lrtop's own `error:` line says most; else the output's last.
            let headline = trial.output_tail.as_deref().and_then(|t| {
                t.lines()
                    .find(|l| l.starts_with("error"))
                    .or_else(|| t.lines().last())
            });
            if let Some(line) = headline {
                trial.status = format!("{}: {}", trial.status, line.trim());
            }
        } else if trial.status == "running"
            && let Some(step) = log.as_deref().and_then(last_step)
        {
            trial.steps = step;
        }
    }
}

fn has_result(manifest: &Manifest, dir: &Path, index: usize) -> bool {
    manifest
        .trials
        .get(index)
        .is_some_and(|t| dir.join(&t.result).is_file())
}

/// A trial's status from its task file and scheduler state, and whether
/// it failed (so its output tail matters).
fn describe(status: Option<&TaskStatus>, state: Option<&str>, answered: bool) -> (String, bool) {
    let ended_badly = |state: &str| -> Option<String> {
        Some(
            match state {
                "CANCELLED" => "cancelled",
                "OUT_OF_MEMORY" => "out of memory",
                "TIMEOUT" => "time limit reached",
                "NODE_FAIL" => "node failed",
                "PREEMPTED" => "preempted",
                "BOOT_FAIL" => "node boot failed",
                "DEADLINE" => "deadline reached",
                _ => return None,
            }
            .to_string(),
        )
    };
    match (status, state) {
        (_, Some("RUNNING" | "COMPLETING" | "CONFIGURING")) => ("running".into(), false),
        (_, Some("PENDING" | "REQUEUED" | "RESIZING" | "SUSPENDED")) => ("pending".into(), false),
        (Some(s), state) if s.end.is_some() || s.exit.is_some() => {
            if let Some(why) = state.and_then(ended_badly) {
                return (why, true);
            }
            match (s.exit, s.signal.as_deref()) {
                (Some(0), _) => ("failed (exit 0 but no result file)".into(), true),
                (Some(code), _) => (format!("failed (exit {code})"), true),
                (None, Some(signal)) => (format!("stopped by {signal}"), true),
                (None, None) => ("failed".into(), true),
            }
        }
        // Started, no end recorded: killed outright (SIGKILL, OOM killer,
        // node lost) or still running where no scheduler answers.
        (Some(_), Some(state)) => (
            ended_badly(state).unwrap_or_else(|| format!("ended without a status ({state})")),
            true,
        ),
        // The scheduler answered and does not know the task: it is not
        // running any more, and it recorded no end (SIGKILL, OOM killer).
        (Some(_), None) if answered => ("ended without a status (killed?)".into(), true),
        (Some(_), None) => ("running".into(), false),
        (None, Some(state)) => match ended_badly(state) {
            Some(why) => (why, false),
            None => (format!("not run ({state})"), false),
        },
        (None, None) => ("pending".into(), false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_files_parse() {
        let s = TaskStatus::parse(
            "job=12\nstart=1796409874.25\ncpus=2\nhost=node1\nend=1796409875.5\nexit=2\n",
        );
        assert_eq!(s.job.as_deref(), Some("12"));
        assert_eq!(
            (s.start, s.end, s.exit, s.cpus),
            (Some(1796409874.25), Some(1796409875.5), Some(2), Some(2))
        );
        assert_eq!(TaskStatus::parse("junk\n=\nexit=x"), TaskStatus::default());
    }

    #[test]
    fn scheduler_outputs_parse() {
        let sacct =
            parse_sacct("5_0|COMPLETED\n5_1|CANCELLED by 0\n5_[2-3%1]|PENDING\nbad\n6|FAILED\n");
        assert_eq!(sacct.get(&0).map(String::as_str), Some("COMPLETED"));
        assert_eq!(sacct.get(&1).map(String::as_str), Some("CANCELLED"));
        assert_eq!(sacct.get(&3).map(String::as_str), Some("PENDING"));
        assert_eq!(sacct.len(), 4);
        let scontrol = "JobId=6 JobName=lrtop-t ArrayJobId=5 ArrayTaskId=0 JobState=CANCELLED Reason=None\n\
             JobId=5 JobName=lrtop-t ArrayJobId=5 ArrayTaskId=1-3,7%1 JobState=CANCELLED\n\
             JobId=9 JobName=other ArrayTaskId=4 JobState=RUNNING\n";
        let states = parse_scontrol(scontrol, "lrtop-t");
        let mut keys: Vec<_> = states.keys().copied().collect();
        keys.sort();
        assert_eq!(keys, [0, 1, 2, 3, 7]);
        assert_eq!(parse_indices("9-2"), Vec::<usize>::new());
        assert_eq!(parse_indices("0-99999999999").len(), 0);
    }

    #[test]
    fn a_running_trial_shows_its_latest_step_and_a_failed_one_its_error() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for sub in ["logs", "results", TASKS] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        let manifest = Manifest {
            id: "tune-7".into(),
            executor: "slurm".into(),
            search: "grid".into(),
            objective: crate::tune::results::Objective::Acc,
            steps: 60,
            train: crate::tune::trial::TrainTemplate {
                model_flags: vec![],
                eval_every: 20,
                target_acc: None,
            },
            halving: None,
            min_steps: None,
            slurm: None,
            trials: super::super::slurm::entries(&["A".into(), "B".into(), "C".into()]),
        };
        std::fs::write(d.join("slurm/trial-0.status"), "job=3\nstart=1.5\n").unwrap();
        std::fs::write(
            d.join("logs/trial-0.jsonl"),
            "{\"step\": 1, \"loss\": 2.0}\n{\"step\": 40, \"loss\": 1.0}\n{\"step\": 4",
        )
        .unwrap();
        std::fs::write(d.join("slurm/trial-1.status"), "start=1\nend=2\nexit=2\n").unwrap();
        std::fs::write(
            d.join("slurm/trial-1.out"),
            "error: invalid --policy 'B'\n\x1b[31m  caused by: unknown\n  help: list\n",
        )
        .unwrap();
        let mut trials: Vec<Trial> = manifest.collect(d);
        let states = HashMap::from([(0, "RUNNING".to_string()), (1, "FAILED".to_string())]);
        annotate_with(&manifest, d, &mut trials, Some(&states));
        assert_eq!(
            (trials[0].status.as_str(), trials[0].steps),
            ("running", 40)
        );
        assert_eq!(trials[0].scheduler.as_deref(), Some("RUNNING"));
        assert_eq!(
            trials[1].status,
            "failed (exit 2): error: invalid --policy 'B'"
        );
        let tail = trials[1].output_tail.as_deref().unwrap();
        assert!(
            tail.contains("caused by") && !tail.contains('\x1b'),
            "{tail}"
        );
        assert_eq!(trials[2].status, "pending");
    }

    #[test]
    fn statuses_say_what_happened() {
        let ended = |exit, signal: Option<&str>| TaskStatus {
            start: Some(1.0),
            end: Some(2.0),
            exit,
            signal: signal.map(str::to_string),
            ..TaskStatus::default()
        };
        let started = TaskStatus {
            start: Some(1.0),
            ..TaskStatus::default()
        };
        let d = |s: Option<&TaskStatus>, state| describe(s, state, state.is_some());
        assert_eq!(
            d(Some(&ended(Some(2), None)), None),
            ("failed (exit 2)".into(), true)
        );
        assert_eq!(
            d(Some(&ended(Some(2), None)), Some("FAILED")),
            ("failed (exit 2)".into(), true)
        );
        assert_eq!(
            d(Some(&ended(None, Some("TERM"))), Some("CANCELLED")),
            ("cancelled".into(), true)
        );
        assert_eq!(
            d(Some(&ended(None, Some("TERM"))), None),
            ("stopped by TERM".into(), true)
        );
        assert_eq!(
            d(Some(&started), Some("OUT_OF_MEMORY")),
            ("out of memory".into(), true)
        );
        assert_eq!(
            d(Some(&started), Some("RUNNING")),
            ("running".into(), false)
        );
        assert_eq!(d(Some(&started), None), ("running".into(), false));
        assert_eq!(
            describe(Some(&started), None, true),
            ("ended without a status (killed?)".into(), true)
        );
        assert_eq!(d(None, Some("CANCELLED")), ("cancelled".into(), false));
        assert_eq!(d(None, Some("PENDING")), ("pending".into(), false));
        assert_eq!(d(None, None), ("pending".into(), false));
    }
}
