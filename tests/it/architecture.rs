//! The layering the developers' guide asks for, checked on the source:
//! data flows up from the lower layers (policy, metrics, ingest, monitor,
//! train, tune), which never import `cmd` or `tui`; no import cycle between
//! top-level modules, nor between the modules of `ingest`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const LOWER: [&str; 6] = ["policy", "metrics", "ingest", "monitor", "train", "tune"];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The identifiers that follow `prefix` in `text` (`crate::ingest` -> `ingest`).
fn names_after<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
    text.match_indices(prefix)
        .map(|(i, _)| {
            let rest = &text[i + prefix.len()..];
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            &rest[..end]
        })
        .filter(|n| !n.is_empty())
        .collect()
}

/// Module graph: for each module key, the modules it names.
type Graph = BTreeMap<String, BTreeSet<String>>;

fn top_level_graph() -> Graph {
    let root = src();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let mut graph = Graph::new();
    for file in files {
        let rel = file.strip_prefix(&root).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if top == "main" || top == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let deps = graph.entry(top.clone()).or_default();
        for name in names_after(&text, "crate::") {
            if name != top {
                deps.insert(name.to_string());
            }
        }
    }
    graph
}

/// The modules of `ingest` and which of them each names (`super::x`,
/// `crate::ingest::x`); a file under `formats/` is the module `formats`.
fn ingest_graph() -> Graph {
    let root = src().join("ingest");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let modules: BTreeSet<String> = std::fs::read_dir(&root)
        .unwrap()
        .flatten()
        .map(|e| {
            e.file_name()
                .to_string_lossy()
                .trim_end_matches(".rs")
                .to_string()
        })
        .filter(|m| m != "mod")
        .collect();
    let mut graph = Graph::new();
    for file in files {
        let rel = file.strip_prefix(&root).unwrap();
        let mut parts = rel.components();
        let first = parts.next().unwrap().as_os_str().to_string_lossy();
        let module = first.trim_end_matches(".rs").to_string();
        if module == "mod" {
            continue;
        }
        let nested = parts.next().is_some();
        let text = std::fs::read_to_string(&file).unwrap();
        let mut named: Vec<&str> = names_after(&text, "crate::ingest::");
        if !nested {
            named.extend(names_after(&text, "super::"));
        }
        let deps = graph.entry(module.clone()).or_default();
        for name in named {
            if name != module && modules.contains(name) {
                deps.insert(name.to_string());
            }
        }
    }
    graph
}

/// A cycle through `start`, if any, as the path of modules.
fn cycle_from(graph: &Graph, start: &str) -> Option<Vec<String>> {
    fn walk(
        graph: &Graph,
        at: &str,
        start: &str,
        path: &mut Vec<String>,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        for next in graph.get(at).into_iter().flatten() {
            if next == start {
                path.push(next.clone());
                return true;
            }
            if seen.insert(next.clone()) {
                path.push(next.clone());
                if walk(graph, next, start, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let mut path = vec![start.to_string()];
    walk(graph, start, start, &mut path, &mut BTreeSet::new()).then_some(path)
}

#[test]
fn lower_layers_never_import_the_ui_or_the_commands() {
    let graph = top_level_graph();
    for layer in LOWER {
        let deps = graph.get(layer).cloned().unwrap_or_default();
        for up in ["cmd", "tui", "session"] {
            assert!(!deps.contains(up), "{layer} imports {up}: {deps:?}");
        }
    }
}

#[test]
fn no_import_cycle_between_top_level_modules() {
    let graph = top_level_graph();
    for module in graph.keys() {
        assert_eq!(cycle_from(&graph, module), None, "import cycle");
    }
}

#[test]
fn no_import_cycle_inside_ingest() {
    let graph = ingest_graph();
    assert!(graph.contains_key("follow") && graph.contains_key("tail"));
    for module in graph.keys() {
        assert_eq!(cycle_from(&graph, module), None, "import cycle in ingest");
    }
}

#[test]
fn every_format_is_one_file_under_formats() {
    let dir = src().join("ingest/formats");
    let names: Vec<&str> = lrtop::ingest::Format::all().map(|f| f.as_str()).collect();
    let files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "mod.rs")
        .collect();
    assert!(files.len() >= names.len(), "{files:?} for {names:?}");
}
