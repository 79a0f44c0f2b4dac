//! The local executor: every trial is a child process `lrtop train
//! --headless`, `jobs` at a time, each with its share of the cores. A trial
//! that fails is recorded with the end of its stderr; a stop request (Ctrl-C,
//! quitting the dashboard) kills the children and leaves the rest unrun.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use super::results::{Trial, TrialSummary};
use super::trial::{Job, TrainTemplate};

/// How often a running child is checked for its end and for a stop request.
const POLL: Duration = Duration::from_millis(20);
/// How much of a failed trial's stderr is kept.
const STDERR_TAIL: usize = 4096;

/// The trials running now, by process id: a forced exit (a second
/// signal, a stop that did not finish in time) kills them rather than
/// leaving them to train on for nobody.
static RUNNING: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// Kills every trial still running (SIGKILL): what a forced exit does.
pub fn kill_running_trials() {
    for &pid in lock_running().iter() {
        #[cfg(unix)]
        if let Ok(pid) = libc::pid_t::try_from(pid) {
            // SAFETY: kill(2) has no memory effects; the pid is a child this
            // process started and has not reaped (it leaves the list first).
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
}

pub const INTERRUPTED: &str = "interrupted";
pub const NOT_RUN: &str = "not run (interrupted)";

/// What happens to the trials, for progress lines and the dashboard.
#[derive(Debug, Clone)]
pub enum TuneEvent {
    /// Jobs about to be run (a grid, or one rung of halving).
    Queued(Vec<Job>),
    Started {
        job: usize,
    },
    Finished {
        job: usize,
        trial: Box<Trial>,
    },
    /// Every trial of the tune has ended (sent by its driver).
    Ended,
}

pub struct LocalExecutor {
    /// The `lrtop` binary the trials run.
    pub exe: PathBuf,
    pub template: TrainTemplate,
    /// Trials at once.
    pub jobs: usize,
    /// Math threads per trial.
    pub threads: usize,
    /// Set to stop: running children are killed, queued ones are not started.
    pub stop: Arc<AtomicBool>,
}

impl LocalExecutor {
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Runs the jobs, `self.jobs` at a time; the trials come back in job order.
    pub fn run(&self, jobs: &[Job], sink: &(dyn Fn(TuneEvent) + Sync)) -> Vec<Trial> {
        sink(TuneEvent::Queued(jobs.to_vec()));
        let next = AtomicUsize::new(0);
        let results: Mutex<Vec<Option<Trial>>> = Mutex::new(vec![None; jobs.len()]);
        std::thread::scope(|scope| {
            for _ in 0..self.jobs.clamp(1, jobs.len().max(1)) {
                scope.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        let Some(job) = jobs.get(i) else { break };
                        let trial = if self.stopped() {
                            not_run(job)
                        } else {
                            sink(TuneEvent::Started { job: job.id });
                            self.run_one(job)
                        };
                        sink(TuneEvent::Finished {
                            job: job.id,
                            trial: Box::new(trial.clone()),
                        });
                        if let Ok(mut r) = results.lock() {
                            r[i] = Some(trial);
                        }
                    }
                });
            }
        });
        let results = results.into_inner().unwrap_or_else(|e| e.into_inner());
        results
            .into_iter()
            .zip(jobs)
            .map(|(t, job)| t.unwrap_or_else(|| not_run(job)))
            .collect()
    }

    fn command(&self, job: &Job) -> Command {
        let mut cmd = Command::new(&self.exe);
        cmd.args(self.template.args(
            &job.spec,
            job.steps,
            Some(self.threads),
            &job.log,
            &job.summary,
        ))
        .env("RAYON_NUM_THREADS", self.threads.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        cmd
    }

    fn run_one(&self, job: &Job) -> Trial {
        // A summary left by an earlier tune in the same directory must not
        // pass for this trial's.
        let _ = std::fs::remove_file(&job.summary);
        if let Some(dir) = job.log.parent().filter(|d| !d.as_os_str().is_empty())
            && let Err(e) = std::fs::create_dir_all(dir)
        {
            return failed(job, format!("creating {}: {e}", dir.display()));
        }
        let mut child = match self.command(job).spawn() {
            Ok(child) => child,
            Err(e) => return failed(job, format!("cannot start {}: {e}", self.exe.display())),
        };
        let stderr = child
            .stderr
            .take()
            .map(|pipe| std::thread::spawn(move || read_tail(pipe, STDERR_TAIL)));
        let pid = child.id();
        lock_running().push(pid);
        let status = self.wait(&mut child);
        let stderr = stderr.and_then(|h| h.join().ok()).unwrap_or_default();
        match status {
            None => failed(job, INTERRUPTED.into()),
            Some(Err(e)) => failed(job, format!("waiting for the trial: {e}")),
            Some(Ok(status)) => self.outcome(job, status, &stderr),
        }
    }

    /// Waits for the child; None when stopped (the child is killed). The
    /// child leaves the running list before it is reaped (its pid could be
    /// another process's after that).
    fn wait(&self, child: &mut Child) -> Option<std::io::Result<ExitStatus>> {
        let pid = child.id();
        let unlist = || lock_running().retain(|&p| p != pid);
        loop {
            #[cfg(unix)]
            if exited(pid) {
                unlist();
                return Some(child.wait());
            }
            #[cfg(not(unix))]
            match child.try_wait() {
                Ok(Some(status)) => {
                    unlist();
                    return Some(Ok(status));
                }
                Ok(None) => {}
                Err(e) => {
                    unlist();
                    return Some(Err(e));
                }
            }
            if self.stopped() {
                crate::signals::test_freeze("tune-stop");
                let _ = child.kill();
                unlist();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(POLL);
        }
    }

    fn outcome(&self, job: &Job, status: ExitStatus, stderr: &str) -> Trial {
        // `train` ends a run it finished with a check's code (an alert, a
        // divergence); its summary still tells how the trial went.
        let checked = matches!(
            status.code().and_then(|c| u8::try_from(c).ok()),
            Some(crate::error::EXIT_ALERT | crate::error::EXIT_DIVERGED)
        );
        if !status.success() && !checked {
            let why = match status.code() {
                Some(code) => format!("exit code {code}"),
                None => "killed by a signal".to_string(),
            };
            return failed(job, format!("{why}: {}", last_lines(stderr)));
        }
        match read_summary(&job.summary) {
            Ok(summary) => {
                let mut trial = Trial::from_summary(job.index, &job.spec, &summary);
                if let Ok(text) = std::fs::read_to_string(&job.log) {
                    let from = summary
                        .steps
                        .saturating_sub(self.template.eval_every.max(1));
                    trial.use_log_train_loss(&text, from);
                }
                trial
            }
            Err(e) => failed(job, format!("{e}: {}", last_lines(stderr))),
        }
    }
}

/// A finished trial's summary file (what `train --summary-out` writes).
pub fn read_summary(path: &Path) -> Result<TrialSummary, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("no summary at {}: {e}", path.display()))?;
    serde_json::from_str(text.trim()).map_err(|e| format!("bad summary {}: {e}", path.display()))
}

fn failed(job: &Job, why: String) -> Trial {
    let mut trial = Trial::failed(job.index, &job.spec, why);
    trial.log = job.log.display().to_string();
    trial
}

fn not_run(job: &Job) -> Trial {
    failed(job, NOT_RUN.into())
}

/// The last `limit` bytes of a stream, read to its end.
fn read_tail(mut pipe: impl Read, limit: usize) -> String {
    let mut kept: Vec<u8> = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match pipe.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                kept.extend_from_slice(&buf[..n]);
                if kept.len() > 2 * limit {
                    kept.drain(..kept.len() - limit);
                }
            }
        }
    }
    if kept.len() > limit {
        kept.drain(..kept.len() - limit);
    }
    String::from_utf8_lossy(&kept).into_owned()
}

/// The last few non-empty lines of stderr on one line: the `error:` lines
/// when there are any (notes and progress say less).
fn last_lines(text: &str) -> String {
    let all: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let errors: Vec<&str> = all
        .iter()
        .filter_map(|l| l.strip_prefix("error:").map(str::trim))
        .collect();
    let lines = if errors.is_empty() { all } else { errors };
    let tail = lines[lines.len().saturating_sub(3)..].join(" | ");
    if tail.is_empty() {
        "no error output".into()
    } else if tail.chars().count() > 400 {
        let skip = tail.chars().count() - 400;
        format!("…{}", tail.chars().skip(skip).collect::<String>())
    } else {
        tail
    }
}

fn lock_running() -> std::sync::MutexGuard<'static, Vec<u32>> {
    RUNNING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Whether child `pid` has exited, without reaping it (waitid with
/// WNOWAIT): until it is reaped its pid stays its own.
#[cfg(unix)]
fn exited(pid: u32) -> bool {
    // id_t is a u32 on every unix lrtop builds for.
    let pid: libc::id_t = pid;
    // SAFETY: `info` is plain data written by waitid; zeroed is valid.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: waitid writes only `info`; WNOWAIT leaves the child waitable.
    let rc = unsafe {
        libc::waitid(
            libc::P_PID,
            pid,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    // SAFETY: si_pid is set by waitid (0 when nothing has exited yet).
    rc != 0 || unsafe { info.si_pid() } != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stderr_tail_keeps_the_end() {
        let text = "a\n".repeat(5000) + "error: boom\n";
        let tail = read_tail(text.as_bytes(), 100);
        assert!(tail.len() <= 100 && tail.ends_with("error: boom\n"));
        assert_eq!(last_lines("x\n\ny\nz\nw\n"), "y | z | w");
        assert_eq!(last_lines("note: cpu\nerror: boom\n"), "boom");
        assert_eq!(last_lines(""), "no error output");
    }
}
