//! `--executor slurm --emit DIR`: a Slurm job array with one `lrtop train
//! --headless` per trial. Slurm (or anything that runs the script with
//! `SLURM_ARRAY_TASK_ID` set) is the scheduler; `lrtop tune collect DIR`
//! ranks what finished and `lrtop attach DIR` watches the logs.

use std::path::Path;

use anyhow::{Context, Result};

use super::manifest::{Manifest, ManifestTrial};

pub const SCRIPT: &str = "run.sbatch";
pub const TRIALS: &str = "trials.txt";
/// Per-task files the script writes: `trial-N.out` (the task's stdout and
/// stderr) and `trial-N.status` (`key=value` lines: start, end, exit).
pub const TASKS: &str = "slurm";

/// A word the shell takes literally.
pub fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Manifest entries of the emitted layout: logs/ and results/.
pub fn entries(specs: &[String]) -> Vec<ManifestTrial> {
    specs
        .iter()
        .enumerate()
        .map(|(i, spec)| ManifestTrial {
            spec: spec.clone(),
            log: format!("logs/trial-{i}.jsonl"),
            result: format!("results/trial-{i}.json"),
        })
        .collect()
}

/// How the array is laid out on the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArrayShape {
    /// `--cpus-per-task`, also the trial's `--threads`.
    pub cpus: usize,
    /// At most this many tasks at once (`--array=0-N%K`).
    pub concurrent: Option<usize>,
}

/// The job name of a tune's array: how `collect` finds its tasks in
/// `squeue` and `sacct` without a job id.
pub fn job_name(manifest: &Manifest) -> String {
    format!("lrtop-{}", manifest.id)
}

/// `0,1,2,5,7,8` → `0-2,5,7-8`, as `--array` takes it.
pub fn index_ranges(indices: &[usize]) -> String {
    let mut sorted = indices.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut parts = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let mut j = i;
        while j + 1 < sorted.len() && sorted[j + 1] == sorted[j] + 1 {
            j += 1;
        }
        parts.push(if i == j {
            sorted[i].to_string()
        } else {
            format!("{}-{}", sorted[i], sorted[j])
        });
        i = j + 1;
    }
    parts.join(",")
}

/// The job array script. `dir` and `workdir` are absolute; `exe` is the
/// lrtop binary (overridable with LRTOP at submission).
pub fn script(
    manifest: &Manifest,
    dir: &Path,
    workdir: &Path,
    exe: &Path,
    shape: ArrayShape,
    tasks: &[usize],
) -> String {
    let n = manifest.trials.len();
    let cpus = shape.cpus;
    let array = if tasks.is_empty() {
        format!("0-{}", n.saturating_sub(1))
    } else {
        index_ranges(tasks)
    };
    let count = if tasks.is_empty() { n } else { tasks.len() };
    let limit = shape
        .concurrent
        .filter(|&k| k < count)
        .map(|k| format!("%{k}"))
        .unwrap_or_default();
    let d = dir.display().to_string();
    let flags: Vec<String> = manifest
        .train
        .run_flags("$SPEC", manifest.steps)
        .into_iter()
        .skip(1)
        .map(|f| quote(&f))
        .collect();
    format!(
        r#"#!/bin/bash
#SBATCH --job-name={name}
#SBATCH --array={array}{limit}
#SBATCH --cpus-per-task={cpus}
#SBATCH --output={d}/{tasks}/trial-%a.out
# One `lrtop train --headless` per line of {trials}. Submit with `sbatch {script}`;
# any runner of commands works: SLURM_ARRAY_TASK_ID=3 bash {script}
# Each task records its start, end and exit status in {tasks}/trial-N.status
# for `lrtop tune collect`.
set -euo pipefail
DIR={qd}
# (Quoted on its own line: inside "${{LRTOP:-...}}" quotes would be kept.)
DEFAULT_LRTOP={exe}
LRTOP="${{LRTOP:-$DEFAULT_LRTOP}}"
ID="${{SLURM_ARRAY_TASK_ID:?set SLURM_ARRAY_TASK_ID (0-{last}) or submit with sbatch}}"
SPEC="$(sed -n "$((ID + 1))p" "$DIR/{trials}")"
if [ -z "$SPEC" ]; then
  echo "no trial $ID in $DIR/{trials}" >&2
  exit 2
fi
THREADS="${{SLURM_CPUS_PER_TASK:-{cpus}}}"
STATUS="$DIR/{tasks}/trial-$ID.status"
cd {workdir}
export RAYON_NUM_THREADS="$THREADS"
# A new attempt starts from nothing: no earlier result or log survives it.
rm -f "$DIR/results/trial-$ID.json" "$DIR/logs/trial-$ID.jsonl"
printf 'job=%s\nstart=%s\ncpus=%s\nhost=%s\n' \
  "${{SLURM_JOB_ID:-}}" "$(date +%s.%N)" "$THREADS" "$(hostname)" >"$STATUS"
# scancel and time limits send TERM: record it once lrtop has stopped.
trap 'printf "end=%s\nsignal=TERM\n" "$(date +%s.%N)" >>"$STATUS"; exit 143' TERM
set +e
"$LRTOP" train --headless --policy "$SPEC" {flags} \
  --threads "$THREADS" \
  --log "$DIR/logs/trial-$ID.jsonl" \
  --summary-out "$DIR/results/trial-$ID.json"
RC=$?
printf 'end=%s\nexit=%s\n' "$(date +%s.%N)" "$RC" >>"$STATUS"
exit "$RC"
"#,
        name = job_name(manifest),
        tasks = TASKS,
        last = n.saturating_sub(1),
        trials = TRIALS,
        script = SCRIPT,
        qd = quote(&d),
        exe = quote(&exe.display().to_string()),
        workdir = quote(&workdir.display().to_string()),
        flags = flags.join(" "),
    )
}

/// `dir/name`, written; the error names the file.
pub fn write_file(dir: &Path, name: &str, text: &str) -> Result<()> {
    let path = dir.join(name);
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
}

/// `trials.txt`: one spec per line, the line a task's array index reads.
pub fn write_trials(manifest: &Manifest, dir: &Path) -> Result<()> {
    let lines: String = manifest
        .trials
        .iter()
        .map(|t| format!("{}\n", t.spec))
        .collect();
    write_file(dir, TRIALS, &lines)
}

/// Writes trials.txt, tune.json and run.sbatch, and the logs/ and results/
/// directories. `dir` must be absolute.
pub fn emit(
    manifest: &Manifest,
    dir: &Path,
    workdir: &Path,
    exe: &Path,
    shape: ArrayShape,
    tasks: &[usize],
) -> Result<()> {
    for sub in ["logs", "results", TASKS] {
        let path = dir.join(sub);
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
    }
    write_trials(manifest, dir)?;
    write_file(
        dir,
        SCRIPT,
        &script(manifest, dir, workdir, exe, shape, tasks),
    )?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join(SCRIPT);
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755));
    }
    // Last: a directory with tune.json is complete.
    manifest.write(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_concurrency_limit_is_written_only_when_it_limits() {
        let manifest = Manifest {
            id: "tune-1".into(),
            executor: "slurm".into(),
            search: "grid".into(),
            objective: crate::tune::results::Objective::Acc,
            steps: 10,
            train: crate::tune::trial::TrainTemplate {
                model_flags: vec!["--task=digits".into()],
                eval_every: 5,
                target_acc: None,
            },
            halving: None,
            min_steps: None,
            slurm: None,
            trials: entries(&[
                "FIX(k0=0.1)".into(),
                "FIX(k0=0.2)".into(),
                "FIX(k0=0.3)".into(),
            ]),
        };
        let with_limit = |concurrent| {
            let shape = ArrayShape {
                cpus: 2,
                concurrent,
            };
            script(
                &manifest,
                Path::new("/d"),
                Path::new("/w"),
                Path::new("/bin/lrtop"),
                shape,
                &[],
            )
        };
        assert!(with_limit(Some(2)).contains("#SBATCH --array=0-2%2\n"));
        assert!(with_limit(Some(3)).contains("#SBATCH --array=0-2\n"));
        assert!(with_limit(None).contains("#SBATCH --array=0-2\n"));
        let s = with_limit(None);
        assert!(s.contains("#SBATCH --job-name=lrtop-tune-1\n"));
        assert!(s.contains("#SBATCH --cpus-per-task=2\n"));
        assert!(s.contains("#SBATCH --output=/d/slurm/trial-%a.out\n"));
        assert_eq!(index_ranges(&[8, 0, 1, 2, 5, 7]), "0-2,5,7-8");
        assert_eq!(index_ranges(&[3]), "3");
        let rung = script(
            &manifest,
            Path::new("/d"),
            Path::new("/w"),
            Path::new("/bin/lrtop"),
            ArrayShape {
                cpus: 1,
                concurrent: Some(2),
            },
            &[2, 0],
        );
        assert!(rung.contains("#SBATCH --array=0,2\n"), "{rung}");
    }

    /// The binary's path is taken literally, spaces and quotes included.
    #[cfg(unix)]
    #[test]
    fn the_script_runs_a_binary_whose_path_needs_quoting() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        let bin_dir = root.path().join("my tools (v2)");
        std::fs::create_dir_all(&bin_dir).unwrap();
        let exe = bin_dir.join("lrtop's");
        let seen = root.path().join("seen.txt");
        std::fs::write(
            &exe,
            format!("#!/bin/sh\necho \"$@\" > '{}'\n", seen.display()),
        )
        .unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        let dir = root.path().join("array");
        let manifest = Manifest {
            id: "tune-2".into(),
            executor: "slurm".into(),
            search: "grid".into(),
            objective: crate::tune::results::Objective::Acc,
            steps: 10,
            train: crate::tune::trial::TrainTemplate {
                model_flags: vec!["--task=digits".into()],
                eval_every: 5,
                target_acc: None,
            },
            halving: None,
            min_steps: None,
            slurm: None,
            trials: entries(&["FIX(k0=0.1)".into()]),
        };
        let shape = ArrayShape {
            cpus: 1,
            concurrent: None,
        };
        emit(&manifest, &dir, root.path(), &exe, shape, &[]).unwrap();
        let status = std::process::Command::new("bash")
            .arg(dir.join(SCRIPT))
            .env("SLURM_ARRAY_TASK_ID", "0")
            .env_remove("LRTOP")
            .status()
            .unwrap();
        assert!(status.success());
        let args = std::fs::read_to_string(&seen).unwrap();
        assert!(
            args.starts_with("train --headless --policy FIX(k0=0.1)"),
            "{args}"
        );
    }

    #[test]
    fn quoting() {
        assert_eq!(quote("--seed=3"), "--seed=3");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote("COS(k0=1,k1=2)"), "'COS(k0=1,k1=2)'");
        assert_eq!(quote(""), "''");
    }
}
