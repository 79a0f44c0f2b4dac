//! The Slurm path against a real Slurm: `scripts/slurm_local.sh` starts a
//! single-node cluster (munged, slurmctld, slurmd, state in a temp
//! directory), the emitted array is `sbatch`ed, and `lrtop tune collect`
//! must rank exactly what a local run of the same grid ranks. Then the
//! failure paths: a trial that fails, an array cancelled half way.
//!
//! Needs Debian's `slurm-wlm` and `munge` and root (slurmd). Without them
//! the test says why on stderr and passes; `.ci/run` sets
//! `LRTOP_REQUIRE_SLURM=1` when it installed them, and then a cluster
//! that does not start is a failure.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::prelude::*;
use serde_json::Value;

const FAST: [&str; 8] = [
    "--steps",
    "60",
    "--eval-every",
    "20",
    "--hidden",
    "32",
    "--threads",
    "1",
];

struct Cluster {
    dir: tempfile::TempDir,
    conf: PathBuf,
}

impl Cluster {
    fn script() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/slurm_local.sh")
    }

    /// A running cluster, or why there is none.
    fn start() -> Result<Cluster, String> {
        for tool in ["munged", "slurmctld", "slurmd", "sbatch", "squeue"] {
            let found = ["/usr/sbin", "/usr/bin", "/usr/local/bin", "/usr/local/sbin"]
                .iter()
                .any(|d| Path::new(d).join(tool).exists());
            if !found {
                return Err(format!(
                    "{tool} is not installed (apt-get install -y slurm-wlm munge)"
                ));
            }
        }
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err("slurmd needs root".into());
        }
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let out = Command::new("bash")
            .arg(Self::script())
            .arg("start")
            .arg(dir.path())
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!(
                "the cluster did not start: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let conf = dir.path().join("slurm.conf");
        Ok(Cluster { dir, conf })
    }

    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("SLURM_CONF", &self.conf);
        c
    }

    fn lrtop(&self) -> Command {
        let mut c = Command::cargo_bin("lrtop").unwrap();
        c.env("SLURM_CONF", &self.conf);
        c
    }

    fn sbatch(&self, script: &Path) -> String {
        let out = self
            .command("sbatch")
            .arg("--parsable")
            .arg(script)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "sbatch: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Array tasks of `name` still waiting or running.
    fn queued(&self, name: &str) -> usize {
        let out = self
            .command("squeue")
            .args(["-h", "-r", &format!("--name={name}"), "-o", "%K"])
            .output()
            .unwrap();
        assert!(out.status.success(), "squeue failed");
        String::from_utf8_lossy(&out.stdout).lines().count()
    }

    fn wait_for(&self, name: &str, what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(240);
        while !done() {
            assert!(
                Instant::now() < deadline,
                "{what} did not happen in 240 s; slurmctld log:\n{}",
                std::fs::read_to_string(self.dir.path().join("log/slurmctld.log"))
                    .unwrap_or_default()
            );
            let _ = name;
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(Self::script())
            .arg("stop")
            .arg(self.dir.path())
            .status();
    }
}

/// One cluster at a time: each claims the machine's 2 CPUs.
static ONE_CLUSTER: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn cluster_or_skip() -> Option<(Cluster, std::sync::MutexGuard<'static, ()>)> {
    let guard = ONE_CLUSTER
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match Cluster::start().map(|c| (c, guard)) {
        Ok(cluster) => Some(cluster),
        Err(why) if std::env::var_os("LRTOP_REQUIRE_SLURM").is_some() => {
            panic!("LRTOP_REQUIRE_SLURM is set but there is no Slurm: {why}")
        }
        Err(why) => {
            eprintln!("note: Slurm test skipped: {why}");
            None
        }
    }
}

fn json(out: &[u8]) -> Value {
    let text = String::from_utf8_lossy(out);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn emit(cluster: &Cluster, cwd: &Path, dir: &str, policy: &str) -> (PathBuf, String) {
    cluster
        .lrtop()
        .current_dir(cwd)
        .args(["tune", "--executor", "slurm", "--emit", dir, "--jobs", "1"])
        .args(["--target-acc", "0.3", "--policy", policy])
        .args(FAST)
        .assert()
        .success();
    let dir = cwd.join(dir);
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("tune.json")).unwrap()).unwrap();
    let name = format!("lrtop-{}", manifest["id"].as_str().unwrap());
    (dir, name)
}

fn collect(cluster: &Cluster, dir: &Path) -> Value {
    let out = cluster
        .lrtop()
        .args(["tune", "collect", "--format", "json"])
        .arg(dir)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    json(&out)
}

/// The same tune with the local executor: its JSON report.
fn local_tune(cwd: &Path, args: &[&str]) -> Value {
    let out = Command::cargo_bin("lrtop")
        .unwrap()
        .current_dir(cwd)
        .args(["tune", "--format", "json", "--jobs", "2", "--out", "local"])
        .args(args)
        .args(FAST)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    json(&out)
}

/// `key=value` of a task's status file.
fn status(dir: &Path, index: usize, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(dir.join(format!("slurm/trial-{index}.status"))).ok()?;
    text.lines()
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| *k == key)
        .map(|(_, v)| v.to_string())
        .next_back()
}

/// Follows `dir` headless until stopped.
fn attach(dir: &Path, out: &Path) -> Child {
    Command::cargo_bin("lrtop")
        .unwrap()
        .args(["attach", "--headless", "--interval", "0.5"])
        .arg(dir)
        .stdout(std::fs::File::create(out).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn a_sweep_on_a_real_slurm_ranks_as_the_local_run_and_reports_failures() {
    let Some((cluster, _one)) = cluster_or_skip() else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let cwd = work.path();

    // The grid on Slurm, one task at a time (%1) though the node has 2 CPUs.
    let (array, name) = emit(&cluster, cwd, "array", "FIX(k0={0.05,0.1,0.2,0.4})");
    let script = std::fs::read_to_string(array.join("run.sbatch")).unwrap();
    assert!(script.contains("#SBATCH --array=0-3%1"), "{script}");
    assert!(script.contains("#SBATCH --cpus-per-task=1"), "{script}");
    // The tune directory: attach follows its logs/, not the tasks' output.
    let attach_out = cwd.join("attach.out");
    let mut watcher = attach(&array, &attach_out);
    cluster.sbatch(&array.join("run.sbatch"));
    cluster.wait_for(&name, "the array finishing", || cluster.queued(&name) == 0);

    // Every task ran, with its own trial, one CPU, one at a time.
    let mut spans = Vec::new();
    for i in 0..4 {
        assert_eq!(status(&array, i, "exit").as_deref(), Some("0"), "trial {i}");
        assert_eq!(status(&array, i, "cpus").as_deref(), Some("1"), "trial {i}");
        assert!(status(&array, i, "job").is_some_and(|j| !j.is_empty()));
        let time = |k| status(&array, i, k).unwrap().parse::<f64>().unwrap();
        spans.push((time("start"), time("end")));
        let log = std::fs::read_to_string(array.join(format!("logs/trial-{i}.jsonl"))).unwrap();
        assert!(log.lines().count() > 60, "trial {i}'s log");
    }
    spans.sort_by(|a, b| a.0.total_cmp(&b.0));
    for pair in spans.windows(2) {
        assert!(
            pair[0].1 <= pair[1].0,
            "tasks overlapped under %1: {spans:?}"
        );
    }

    // The same grid run locally ranks the same, to the last digit.
    let slurm = collect(&cluster, &array);
    assert_eq!(slurm["partial"], false, "{slurm}");
    let local = local_tune(
        cwd,
        &[
            "--target-acc",
            "0.3",
            "--policy",
            "FIX(k0={0.05,0.1,0.2,0.4})",
        ],
    );
    let digest = |report: &Value| -> Vec<String> {
        report["trials"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                format!(
                    "{} {} {} {} {} {} {}",
                    t["index"],
                    t["spec"],
                    t["status"],
                    t["final_acc"],
                    t["best_acc"],
                    t["eval_loss"],
                    t["steps_to_target"]
                )
            })
            .collect()
    };
    assert_eq!(digest(&slurm), digest(&local));
    assert_eq!(slurm["best"]["spec"], local["best"]["spec"]);

    // attach, started before sbatch, picked up every trial's log.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let seen = std::fs::read_to_string(&attach_out).unwrap_or_default();
        if (0..4).all(|i| seen.contains(&format!("trial-{i}.jsonl"))) {
            assert!(!seen.contains(".out"), "{seen}");
            break;
        }
        assert!(Instant::now() < deadline, "attach output:\n{seen}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = watcher.kill();
    let _ = watcher.wait();

    // Failures: trial 1 has a bad spec; the array is cancelled after it.
    let (broken, name) = emit(&cluster, cwd, "broken", "FIX(k0={0.05,0.1,0.2,0.4})");
    let trials = broken.join("trials.txt");
    let text = std::fs::read_to_string(&trials).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines[1] = "NOPE(k0=1)";
    std::fs::write(&trials, lines.join("\n") + "\n").unwrap();
    let job = cluster.sbatch(&broken.join("run.sbatch"));
    cluster.wait_for(&name, "trial 1 failing", || {
        status(&broken, 1, "exit").is_some()
    });
    let cancel = cluster.command("scancel").arg(&job).status().unwrap();
    assert!(cancel.success());
    cluster.wait_for(&name, "the cancel", || cluster.queued(&name) == 0);

    let report = collect(&cluster, &broken);
    let again = collect(&cluster, &broken);
    assert_eq!(report, again, "collect is idempotent");
    assert_eq!(report["partial"], true, "{report}");
    let by_index = |i: u64| -> &Value {
        report["trials"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["index"] == i)
            .unwrap()
    };
    assert_eq!(by_index(0)["status"], "ok", "{report}");
    let failed = by_index(1);
    assert!(
        failed["status"]
            .as_str()
            .unwrap()
            .starts_with("failed (exit 2)"),
        "{failed}"
    );
    assert!(
        failed["output_tail"].as_str().unwrap().contains("NOPE"),
        "{failed}"
    );
    assert_eq!(failed["scheduler"], "FAILED", "{failed}");
    assert_eq!(by_index(3)["status"], "cancelled", "{report}");
    assert_eq!(by_index(3)["scheduler"], "CANCELLED", "{report}");
    let second = by_index(2)["status"].as_str().unwrap();
    assert!(second == "cancelled" || second == "ok", "{report}");
    let text = cluster
        .lrtop()
        .args(["tune", "collect"])
        .arg(&broken)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8_lossy(&text);
    assert!(text.contains("partial: "), "{text}");
    assert!(
        text.contains("#1 FIX(k0=0.1): failed (exit 2): error: invalid --policy 'NOPE(k0=1)'"),
        "{text}"
    );
}

#[test]
fn successive_halving_on_slurm_submits_each_rung_from_the_one_before() {
    let Some((cluster, _one)) = cluster_or_skip() else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let cwd = work.path();
    let grid = ["--policy", "FIX(k0={0.02,0.05,0.1,0.2})"];
    let halving = ["--halving", "2", "--min-steps", "15"];
    cluster
        .lrtop()
        .current_dir(cwd)
        .args(["tune", "--executor", "slurm", "--emit", "h", "--jobs", "2"])
        .args(grid)
        .args(halving)
        .args(FAST)
        .assert()
        .success();
    let dir = cwd.join("h");
    assert!(
        !dir.join("rung-0").exists(),
        "nothing is written before submission"
    );
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("tune.json")).unwrap()).unwrap();
    let id = manifest["id"].as_str().unwrap().to_string();
    // submit.sh submits rung 0 and the job that advances after it, and
    // returns at once: no process waits for the rungs.
    let out = cluster
        .command("bash")
        .arg(dir.join("submit.sh"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("submitted rung 0: 4 trials of 15 updates"),
        "{said}"
    );
    assert!(!dir.join("rung-1").exists());
    let rung0 = std::fs::read_to_string(dir.join("rung-0/run.sbatch")).unwrap();
    assert!(rung0.contains("#SBATCH --array=0-3%2\n"), "{rung0}");
    // Run again while rung 0 is queued: nothing more is submitted.
    let again = cluster
        .lrtop()
        .args(["tune", "next-rung"])
        .arg(&dir)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    // (Or, if rung 0 already ended, it submits rung 1, as its job would.)
    let again = String::from_utf8_lossy(&again).into_owned();
    let by_hand = again.contains("submitted rung 1");
    assert!(again.contains("waiting or running") || by_hand, "{again}");
    let all_jobs = || {
        let out = cluster
            .command("squeue")
            .args(["-h", "-o", "%j"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.starts_with(&format!("lrtop-{id}")))
            .count()
    };
    cluster.wait_for(&id, "the last rung", || {
        dir.join("rung-2/tune.json").exists() && all_jobs() == 0
    });
    let rung1 = std::fs::read_to_string(dir.join("rung-1/run.sbatch")).unwrap();
    assert!(rung1.contains("--steps=30"), "{rung1}");
    // Rung 1 was submitted by the job that depended on rung 0.
    let next0 = std::fs::read_to_string(dir.join("slurm/next-0.out")).unwrap();
    assert!(
        by_hand || next0.contains("submitted rung 1: 2 trials of 30 updates"),
        "{next0}"
    );

    let slurm = collect(&cluster, &dir);
    assert_eq!(slurm["partial"], false, "{slurm}");
    let local = local_tune(cwd, &[&grid[..], &halving[..]].concat());
    for key in [
        "rungs",
        "winner",
        "winner_spec",
        "updates_spent",
        "compute_saved",
    ] {
        assert_eq!(
            slurm["halving"][key], local["halving"][key],
            "{key}: {slurm}"
        );
    }
    let digest = |report: &Value| -> Vec<String> {
        report["trials"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                format!(
                    "{} {} {} {}",
                    t["index"], t["steps"], t["final_acc"], t["eval_loss"]
                )
            })
            .collect()
    };
    assert_eq!(digest(&slurm), digest(&local));
    assert_eq!(slurm["best"]["spec"], local["best"]["spec"]);
    let done = cluster
        .lrtop()
        .args(["tune", "next-rung"])
        .arg(&dir)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert!(String::from_utf8_lossy(&done).contains("halving finished"));
}
