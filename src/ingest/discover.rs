//! Command-line arguments to sources: files, directories searched for logs,
//! glob patterns (expanded here, since a shell may not), `-` for stdin.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Component, Path, PathBuf};

use super::formats::trainer_state::checkpoint_of;
use super::formats::{
    Format, RunPart, SNIFF_BYTES, detect, format_by_name, format_of_dir, is_log_in_scan,
};
use super::{IngestError, Source};

/// How deep below a directory argument log files are looked for.
const MAX_DEPTH: usize = 4;

/// Sources for `args`, in argument order (files found in a directory or by a
/// pattern sorted by path), without duplicates. A path that does not exist is
/// kept (it may appear while following; `Source::exists` tells); a pattern
/// that matches nothing or a directory without logs is an error.
pub fn discover(args: &[String]) -> Result<Vec<Source>, IngestError> {
    discover_with(args, &|_| None)
}

/// `discover` for a rescan: files for which `settled` gives their real path
/// were found before and are known to be plain logs, so they are not opened,
/// sniffed or resolved again (a rescan of ten thousand files reads only
/// directories).
pub(crate) fn discover_with(
    args: &[String],
    settled: &Settled<'_>,
) -> Result<Vec<Source>, IngestError> {
    let mut found: Vec<Found> = Vec::new();
    for arg in args {
        if arg == "-" {
            found.push(Found::Stdin);
            continue;
        }
        let path = Path::new(arg);
        if path.is_dir() {
            if let Some(format) = format_of_dir(path) {
                found.push(Found::Group(path.to_path_buf(), format));
                continue;
            }
            let logs = logs_in_dir(path, settled)?;
            if logs.is_empty() {
                return Err(IngestError::NoLogsInDir {
                    dir: path.to_path_buf(),
                });
            }
            found.extend(grouped(logs));
        } else if !path.exists() && is_pattern(arg) {
            found.extend(grouped(expand(arg, settled)?));
        } else {
            found.push(Found::File(path.to_path_buf()));
        }
    }
    let found: Vec<Found> = found
        .into_iter()
        .flat_map(|f| match &f {
            Found::File(p) if settled(p).is_some() => vec![f],
            _ => with_parts(f),
        })
        .collect();
    // One run per file however it is named (`a`, `./a`, its absolute
    // path, a symlink to it): the first spelling is kept.
    let mut unique: Vec<Found> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for f in found {
        let id = match &f {
            // Found (and told apart) before: its real path is not looked up again.
            Found::File(p) => match settled(p) {
                Some(real) => (Some(real), None, false),
                None => identity(&f),
            },
            _ => identity(&f),
        };
        if seen.insert(id) {
            unique.push(f);
        }
    }
    let paths: Vec<Option<PathBuf>> = unique
        .iter()
        .map(|f| match f {
            Found::Stdin => None,
            Found::File(p) | Found::Group(p, _) | Found::Part(p, _, _) => Some(p.clone()),
        })
        .collect();
    // Labels are printed: a file name's control characters are not.
    let labels: Vec<String> = labels(&paths)
        .into_iter()
        .map(|l| crate::format::printable(&l).into_owned())
        .collect();
    Ok(unique
        .into_iter()
        .zip(labels)
        .map(|(found, label)| match found {
            Found::Stdin => Source::stdin(),
            Found::File(path) => Source {
                label,
                ..Source::file(path)
            },
            Found::Group(dir, format) => Source {
                label,
                ..Source::group(dir, format)
            },
            Found::Part(path, format, part) => Source {
                label: format!("{label}/{}", part.name),
                format: Some(format),
                part: Some(part.key),
                ..Source::file(path)
            },
        })
        .collect())
}

/// The real path of a file found before and known to be one plain log.
pub(crate) type Settled<'a> = dyn Fn(&Path) -> Option<PathBuf> + 'a;

/// What makes two found sources the same: the file's real path (and the
/// run inside it).
fn identity(found: &Found) -> (Option<PathBuf>, Option<String>, bool) {
    let real = |p: &Path| fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    match found {
        Found::Stdin => (None, None, false),
        Found::File(p) => (Some(real(p)), None, false),
        Found::Group(p, _) => (Some(real(p)), None, true),
        Found::Part(p, _, part) => (Some(real(p)), Some(part.key.clone()), false),
    }
}

/// What an argument names: stdin, a log file, or a directory whose files
/// of one format are one run.
#[derive(Debug, Clone, PartialEq)]
enum Found {
    Stdin,
    File(PathBuf),
    Group(PathBuf, Format),
    /// One run of a file that holds several.
    Part(PathBuf, Format, RunPart),
}

/// A file of a format that holds several runs (a tracker's database) is
/// one source per run.
fn with_parts(found: Found) -> Vec<Found> {
    let Found::File(path) = &found else {
        return vec![found];
    };
    let Some(format) = detect_file(path) else {
        return vec![found];
    };
    let parts = format.spec().runs_in(path);
    if parts.is_empty() {
        return vec![found];
    }
    parts
        .into_iter()
        .map(|part| Found::Part(path.clone(), format, part))
        .collect()
}

/// The format of an existing file, from its name and first bytes.
fn detect_file(path: &Path) -> Option<Format> {
    use std::io::Read;
    // Opening a FIFO would wait for its writer; a device is never a log.
    if super::special::kind(path) != super::special::PathKind::Ordinary {
        return None;
    }
    let mut head = Vec::new();
    let file = fs::File::open(path).ok()?;
    file.take(SNIFF_BYTES as u64).read_to_end(&mut head).ok()?;
    detect(Some(path), &head, true)
}

/// Files found in a directory scan; those of a format whose files in one
/// directory are one run (TensorBoard's) become one group per directory.
fn grouped(files: Vec<Found>) -> Vec<Found> {
    let mut out: Vec<Found> = Vec::new();
    for found in files {
        let Found::File(path) = found else {
            out.push(found);
            continue;
        };
        let format = format_by_name(&path).filter(|f| f.spec().groups_by_directory());
        match (format, path.parent()) {
            (Some(format), Some(dir)) => {
                let group = Found::Group(dir.to_path_buf(), format);
                if !out.contains(&group) {
                    out.push(group);
                }
            }
            _ => out.push(Found::File(path)),
        }
    }
    out
}

fn is_pattern(arg: &str) -> bool {
    arg.contains(['*', '?', '['])
}

/// The paths a pattern matches, sorted. `**` is walked here, each
/// directory once (by device and inode), so a symlink loop ends.
fn glob_paths(pattern: &str) -> Result<Vec<PathBuf>, IngestError> {
    let bad = |e: glob::PatternError| IngestError::BadGlob {
        pattern: pattern.to_string(),
        message: e.to_string(),
    };
    if !pattern.contains("**") {
        // Unreadable entries are skipped, as a shell would.
        return Ok(glob::glob(pattern).map_err(bad)?.flatten().collect());
    }
    let compiled = glob::Pattern::new(pattern).map_err(bad)?;
    let options = glob::MatchOptions {
        require_literal_separator: true,
        ..Default::default()
    };
    let base: PathBuf = Path::new(pattern)
        .components()
        .take_while(|c| !is_pattern(&c.as_os_str().to_string_lossy()))
        .collect();
    let start = if base.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        base.clone()
    };
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    let mut stack = vec![(start, 0usize)];
    while let Some((dir, depth)) = stack.pop() {
        let Ok(meta) = fs::metadata(&dir) else {
            continue;
        };
        if !seen.insert(dir_identity(&meta, &dir)) || depth > GLOB_DEPTH {
            continue;
        }
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let mut path = entry.path();
            if base.as_os_str().is_empty() {
                path = path
                    .strip_prefix(".")
                    .map(Path::to_path_buf)
                    .unwrap_or(path);
            }
            if compiled.matches_path_with(&path, options) {
                out.push(path.clone());
            }
            if path.is_dir() {
                stack.push((path, depth + 1));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Directories below a `**` walked at most this deep.
const GLOB_DEPTH: usize = 32;

/// What tells directories apart whatever the path to them.
fn dir_identity(meta: &fs::Metadata, path: &Path) -> (u64, u64, PathBuf) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let _ = path;
        (meta.dev(), meta.ino(), PathBuf::new())
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        (
            0,
            0,
            fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()),
        )
    }
}

fn expand(pattern: &str, settled: &Settled<'_>) -> Result<Vec<Found>, IngestError> {
    let mut found = Vec::new();
    for path in glob_paths(pattern)? {
        if path.is_dir() {
            match format_of_dir(&path) {
                Some(format) => found.push(Found::Group(path, format)),
                None => found.extend(logs_in_dir(&path, settled)?),
            }
        } else {
            found.push(Found::File(path));
        }
    }
    if found.is_empty() {
        return Err(IngestError::GlobNoMatch {
            pattern: pattern.to_string(),
        });
    }
    Ok(found)
}

/// Logs under `dir`: files of a format (of several `checkpoint-N/`
/// siblings only the highest N's `trainer_state.json`) and run directories
/// (MLflow's), sorted by path.
fn logs_in_dir(dir: &Path, settled: &Settled<'_>) -> Result<Vec<Found>, IngestError> {
    // Fail on the argument itself; unreadable subdirectories are skipped.
    fs::read_dir(dir).map_err(|e| IngestError::io(dir, e))?;
    let mut found = Vec::new();
    // Newest checkpoint per run directory: run dir -> (N, path).
    let mut checkpoints: BTreeMap<PathBuf, (u64, PathBuf)> = BTreeMap::new();
    let mut on_file = |path: &Path| {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name == "trainer_state.json" {
            if let Some((run_dir, n)) = checkpoint_of(path) {
                let newest = checkpoints
                    .entry(run_dir)
                    .or_insert((n, path.to_path_buf()));
                if n > newest.0 {
                    *newest = (n, path.to_path_buf());
                }
                return;
            }
            found.push(Found::File(path.to_path_buf()));
        } else if settled(path).is_some() || is_log_in_scan(path) {
            found.push(Found::File(path.to_path_buf()));
        }
    };
    let mut run_dirs = Vec::new();
    walk(
        dir,
        0,
        &mut on_file,
        &mut |d: &Path| match format_of_dir(d) {
            Some(format) => {
                run_dirs.push(Found::Group(d.to_path_buf(), format));
                true
            }
            None => false,
        },
    );
    found.extend(checkpoints.into_values().map(|(_, p)| Found::File(p)));
    found.extend(run_dirs);
    found.sort_by(|a, b| found_path(a).cmp(found_path(b)));
    Ok(found)
}

fn found_path(found: &Found) -> &Path {
    match found {
        Found::Stdin => Path::new(""),
        Found::File(p) | Found::Group(p, _) | Found::Part(p, _, _) => p,
    }
}

/// Visits the files below `dir`; a directory `claim_dir` takes is not entered.
fn walk(
    dir: &Path,
    depth: usize,
    on_file: &mut impl FnMut(&Path),
    claim_dir: &mut impl FnMut(&Path) -> bool,
) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        // Symlinked directories are not entered (no loops); symlinked files count.
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            if !claim_dir(&path) && depth < MAX_DEPTH {
                walk(&path, depth + 1, on_file, claim_dir);
            }
        } else if path.is_file() {
            on_file(&path);
        }
    }
}

/// Paths shortened to what tells them apart: the directories all share are
/// dropped, and a generic file name keeps its directory.
fn labels(paths: &[Option<PathBuf>]) -> Vec<String> {
    let dirs: Vec<Vec<Component>> = paths
        .iter()
        .flatten()
        .map(|p| p.parent().map_or(Vec::new(), |d| d.components().collect()))
        .collect();
    let common = dirs.first().map_or(0, |first| {
        (0..first.len())
            .take_while(|&i| dirs.iter().all(|d| d.get(i) == first.get(i)))
            .count()
    });
    paths
        .iter()
        .map(|path| {
            let Some(path) = path else {
                return "stdin".to_string();
            };
            let parts: Vec<Component> = path.components().collect();
            let mut keep = common.min(parts.len().saturating_sub(1));
            let generic = ["trainer_state.json", "metrics.csv", "log.jsonl"];
            if parts.len() - keep == 1
                && keep > 0
                && generic.contains(&path.file_name().and_then(|n| n.to_str()).unwrap_or(""))
            {
                keep -= 1;
            }
            parts[keep..]
                .iter()
                .collect::<PathBuf>()
                .display()
                .to_string()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_drop_the_shared_directories() {
        let p = |s: &str| Some(PathBuf::from(s));
        assert_eq!(
            labels(&[p("runs/a/log.jsonl"), p("runs/b/x.csv"), None]),
            ["a/log.jsonl", "b/x.csv", "stdin"]
        );
        assert_eq!(labels(&[p("runs/a/train.jsonl")]), ["train.jsonl"]);
        assert_eq!(
            labels(&[p("out/checkpoint-300/trainer_state.json")]),
            ["checkpoint-300/trainer_state.json"]
        );
        assert_eq!(labels(&[p("x.csv")]), ["x.csv"]);
    }

    #[test]
    fn checkpoint_numbers() {
        assert_eq!(
            checkpoint_of(Path::new("o/checkpoint-12/trainer_state.json")),
            Some((PathBuf::from("o"), 12))
        );
        assert_eq!(checkpoint_of(Path::new("o/x/trainer_state.json")), None);
    }
}
