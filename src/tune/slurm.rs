//! `--executor slurm --emit DIR`: a Slurm job array with one `lrtop train
//! --headless` per trial. Slurm (or anything that runs the script with
//! `SLURM_ARRAY_TASK_ID` set) is the scheduler; `lrtop tune collect DIR`
//! ranks what finished and `lrtop attach DIR` watches the logs.

use std::path::Path;

use anyhow::{Context, Result};

use super::manifest::{Manifest, ManifestTrial};

pub const SCRIPT: &str = "run.sbatch";
pub const TRIALS: &str = "trials.txt";

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

/// The job array script. `dir` and `workdir` are absolute; `exe` is the
/// lrtop binary (overridable with LRTOP at submission).
pub fn script(manifest: &Manifest, dir: &Path, workdir: &Path, exe: &Path, cpus: usize) -> String {
    let n = manifest.trials.len();
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
#SBATCH --job-name=lrtop-{id}
#SBATCH --array=0-{last}
#SBATCH --cpus-per-task={cpus}
#SBATCH --output={d}/slurm-%A_%a.out
# One `lrtop train --headless` per line of {trials}. Submit with `sbatch {script}`;
# any runner of commands works: SLURM_ARRAY_TASK_ID=3 bash {script}
set -euo pipefail
DIR={qd}
LRTOP="${{LRTOP:-{exe}}}"
ID="${{SLURM_ARRAY_TASK_ID:?set SLURM_ARRAY_TASK_ID (0-{last}) or submit with sbatch}}"
SPEC="$(sed -n "$((ID + 1))p" "$DIR/{trials}")"
if [ -z "$SPEC" ]; then
  echo "no trial $ID in $DIR/{trials}" >&2
  exit 2
fi
THREADS="${{SLURM_CPUS_PER_TASK:-{cpus}}}"
cd {workdir}
export RAYON_NUM_THREADS="$THREADS"
exec "$LRTOP" train --headless --policy "$SPEC" {flags} \
  --threads "$THREADS" \
  --log "$DIR/logs/trial-$ID.jsonl" \
  --summary-out "$DIR/results/trial-$ID.json"
"#,
        id = manifest.id,
        last = n.saturating_sub(1),
        trials = TRIALS,
        script = SCRIPT,
        qd = quote(&d),
        exe = quote(&exe.display().to_string()),
        workdir = quote(&workdir.display().to_string()),
        flags = flags.join(" "),
    )
}

/// Writes trials.txt, tune.json and run.sbatch, and the logs/ and results/
/// directories. `dir` must be absolute.
pub fn emit(
    manifest: &Manifest,
    dir: &Path,
    workdir: &Path,
    exe: &Path,
    cpus: usize,
) -> Result<()> {
    for sub in ["logs", "results"] {
        let path = dir.join(sub);
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
    }
    let mut lines = String::new();
    for t in &manifest.trials {
        lines.push_str(&t.spec);
        lines.push('\n');
    }
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
    };
    write(TRIALS, &lines)?;
    manifest.write(dir)?;
    write(SCRIPT, &script(manifest, dir, workdir, exe, cpus))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join(SCRIPT);
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote("--seed=3"), "--seed=3");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote("COS(k0=1,k1=2)"), "'COS(k0=1,k1=2)'");
        assert_eq!(quote(""), "''");
    }
}
