//! The log formats lrtop reads, one file each behind [`LogFormat`], and the
//! registry [`ALL`] that detection, loading and following go through. A new
//! format is a new file here and a line in `ALL`.

use std::fmt;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::IngestError;
use super::batch::Batch;
use super::fields::FieldMap;
use super::run_config::RunConfig;
use super::tally::Tally;
use crate::metrics::RunData;

pub(crate) mod csv;
pub(crate) mod jsonl;
pub(crate) mod mlflow_files;
pub(crate) mod mlflow_sqlite;
pub(crate) mod printed;
pub(crate) mod sqlite;
pub(crate) mod tfevents;
pub(crate) mod trackio;
pub(crate) mod trainer_state;
pub(crate) mod wandb;

/// Bytes read from a file's start to decide its format.
pub(crate) const SNIFF_BYTES: usize = 64 * 1024;

/// Every format, in the order their content is tried (formats with a magic
/// number or a certain mark first, catch-alls last).
const ALL: &[&dyn LogFormat] = &[
    &tfevents::TfEvents,
    &wandb::Wandb,
    &mlflow_sqlite::MlflowSqlite,
    &trackio::Trackio,
    &trainer_state::TrainerState,
    &jsonl::Jsonl,
    &csv::Csv,
    &printed::Printed,
    &mlflow_files::MlflowFiles,
];

/// What a file's name says about a format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum NameClaim {
    No,
    /// A generic name (`*.log`, `*.out`): any content claim overrides it.
    Weak,
    /// The usual name of this format (`*.jsonl`): a strong content claim
    /// of another format overrides it.
    Likely,
    /// Only this format has this name (`trainer_state.json`).
    Certain,
}

/// What a file's first bytes say about a format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ContentClaim {
    No,
    /// Could be, once more bytes arrive.
    Undecided,
    /// Looks like it.
    Plain,
    /// A mark only this format has (a magic number, a `log_history` key).
    Strong,
}

/// How a file of this format changes while its job runs.
pub(crate) enum Reader {
    /// Appended to: parsed as bytes arrive.
    Stream(Box<dyn StreamParser>),
    /// Rewritten whole on every save: parsed whole on every change.
    Whole(Box<dyn WholeParser>),
    /// A database the tracker updates in place: asked for the rows added
    /// since the last poll.
    Query(Box<dyn QueryReader>),
}

/// Reads what a tracker's database holds for one run, a poll at a time.
pub(crate) trait QueryReader: Send + fmt::Debug {
    /// Adds the records (and settings) added since the last poll.
    /// Err: the database cannot be read now (locked, not the expected schema).
    fn poll(&mut self, path: &Path, out: &mut Batch) -> Result<(), String>;
}

/// One run of a file that holds several (a tracker's database).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RunPart {
    /// What the format finds the run by (a run id).
    pub(crate) key: String,
    /// What the user knows it by (the run's name).
    pub(crate) name: String,
}

/// An incremental parser of an appended file: bytes in (any split), records
/// and bad lines out, each exactly once.
pub(crate) trait StreamParser: Send + fmt::Debug {
    fn feed(&mut self, data: &[u8], out: &mut Batch);
    /// The input ended: an unfinished last record is a bad one.
    fn finish(&mut self, out: &mut Batch);
    /// Forgets everything, for reading the input again from its start.
    fn reset(&mut self);
    /// The file no longer holds what was read; `head` is its new start.
    /// The default: read it again from its start.
    fn rewritten(&mut self, _head: &[u8]) -> Rewrite {
        self.reset();
        Rewrite::FromStart
    }
    /// Which variant of the format the input turned out to be (a printed
    /// log's trainer), once known.
    fn dialect(&self) -> Option<&'static str> {
        None
    }
}

/// What a rewritten file means for the rows already read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rewrite {
    /// Too little of the new content to tell: decide at the next change.
    Undecided,
    /// The same rows again, with more (Lightning's CSV header that grew):
    /// the parser passes over the rows it has, nothing is reset.
    Continues,
    /// Different content: it is read again from its start.
    FromStart,
}

/// A parser of a document rewritten whole (trainer_state.json).
pub(crate) trait WholeParser: Send + fmt::Debug {
    /// Parses the whole document and adds the entries not added before.
    /// Err: it does not parse (most likely caught while being written).
    fn parse(&mut self, bytes: &[u8], out: &mut Batch) -> Result<Whole, String>;
}

/// What a whole document held, compared with the last one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Whole {
    /// The entries seen before, maybe followed by new ones.
    Grew,
    /// Fewer entries than before: it was read again from its first entry.
    Shrank,
}

/// Where a cold load reads from: the bytes already read to sniff the format
/// (`head`), then the rest of the input.
pub(crate) struct LoadInput<'a> {
    pub(crate) head: Vec<u8>,
    pub(crate) rest: &'a mut (dyn Read + Send),
    pub(crate) map: &'a FieldMap,
    pub(crate) options: &'a LoadOptions,
    pub(crate) arrival: f64,
}

/// What a cold load got: the run's columns and counts, or why a whole
/// document does not parse.
pub(crate) type Loaded = Result<Cold, String>;

/// A whole input read into columns.
#[derive(Debug, Default)]
pub(crate) struct Cold {
    pub(crate) data: RunData,
    pub(crate) tally: Tally,
    /// The run's settings, for formats that record them.
    pub(crate) config: Option<RunConfig>,
    /// The format's variant, when it has several.
    pub(crate) dialect: Option<&'static str>,
}

/// One log format.
pub(crate) trait LogFormat: Send + Sync {
    /// The name summaries and the status bar show.
    fn name(&self) -> &'static str;
    /// What `file_name` (lower-cased) says.
    fn claim_name(&self, file_name: &str) -> NameClaim;
    /// What the first bytes say; `complete`: they are the whole input.
    fn claim_content(&self, head: &[u8], complete: bool) -> ContentClaim;
    /// What the file says, when its first bytes are not enough (a database
    /// is known by its tables).
    fn claim_file(&self, _path: &Path, head: &[u8], complete: bool) -> ContentClaim {
        self.claim_content(head, complete)
    }
    /// The runs a file of this format holds, when it holds several (a
    /// tracker's database); empty: the file is one run.
    fn runs_in(&self, _path: &Path) -> Vec<RunPart> {
        Vec::new()
    }
    /// Whether `runs_in` can find runs (a file of it may gain some later).
    fn holds_runs(&self) -> bool {
        false
    }
    /// A reader of one run of a file that holds several.
    fn part_reader(&self, map: &FieldMap, _part: &str) -> Reader {
        self.reader(map)
    }
    /// Is this directory a run of this format (MLflow's file store keeps a
    /// run as a directory of files)?
    fn claims_dir(&self, _dir: &Path) -> bool {
        false
    }
    /// The files of a run directory (or of a directory of this format's
    /// files that are one run), in the order they are read.
    fn members(&self, dir: &Path) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        let mut members: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.is_file()
                    && lower_name(p).is_some_and(|n| self.claim_name(&n) >= NameClaim::Likely)
            })
            .collect();
        members.sort();
        members
    }
    /// A reader of one member of a run directory.
    fn member_reader(&self, _dir: &Path, _member: &Path, map: &FieldMap) -> Reader {
        self.reader(map)
    }
    /// Whether a group's members hold different metrics of the same steps
    /// (merged by step), rather than one after another (read in order).
    fn members_by_step(&self) -> bool {
        false
    }
    /// The settings recorded with a run directory.
    fn dir_config(&self, _dir: &Path) -> Option<RunConfig> {
        None
    }
    /// A parser for following a file of this format.
    fn reader(&self, map: &FieldMap) -> Reader;
    /// Reads a whole input into columns; formats with a faster way than
    /// their parser (in parallel, straight into columns) override it.
    fn cold_load(&self, input: LoadInput<'_>) -> io::Result<Loaded> {
        load_with_reader(self.reader(input.map), input)
    }
    /// Whether the files of this format in one directory are one run (a
    /// restart or another process writes a new file next to the first).
    fn groups_by_directory(&self) -> bool {
        false
    }
    /// A newer file the writer moved on to, which holds this one's records
    /// and more (Hugging Face's `checkpoint-N/` directories).
    fn newer_file(&self, _path: &Path) -> Option<PathBuf> {
        None
    }
    /// The error for a whole document that does not parse.
    fn invalid(&self, path: &Path, message: String) -> IngestError {
        IngestError::Invalid {
            path: path.to_path_buf(),
            format: self.name(),
            message,
        }
    }
}

/// Tuning of the cold load; the defaults suit any file.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Bytes of JSONL one parallel task parses (cut at a newline).
    pub chunk_bytes: usize,
    /// Parse chunks on rayon's pool (false: one by one, same result).
    pub parallel: bool,
    /// Sees every parsed chunk, in order, while later ones are parsed (the
    /// monitor as a pipeline stage). Formats without a chunked cold load
    /// never call it: compare the rows it saw with the run's.
    pub observer: Option<Observer>,
}

/// A callback over each chunk of rows of a cold load, in file order.
#[derive(Clone)]
pub struct Observer(pub std::sync::Arc<dyn Fn(&RunData) + Send + Sync>);

impl std::fmt::Debug for Observer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Observer")
    }
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            chunk_bytes: 1 << 20,
            parallel: true,
            observer: None,
        }
    }
}

/// Reads until `buf` grew by `want` bytes or the input ended (returns true).
pub(crate) fn fill(reader: &mut impl Read, buf: &mut Vec<u8>, want: usize) -> io::Result<bool> {
    let target = buf.len().saturating_add(want);
    buf.reserve(want);
    while buf.len() < target {
        let n = reader
            .by_ref()
            .take((target - buf.len()) as u64)
            .read_to_end(buf);
        match n {
            Ok(0) => return Ok(true),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(false)
}

/// The cold load of a format without a faster one: its own parser, fed the
/// input block by block (or the whole document), into columns.
pub(crate) fn load_with_reader(reader: Reader, input: LoadInput<'_>) -> io::Result<Loaded> {
    let mut data = RunData::new();
    let mut batch = Batch::default();
    match reader {
        Reader::Stream(mut parser) => {
            let mut rest = input.rest;
            let mut buf = input.head;
            loop {
                parser.feed(&buf, &mut batch);
                for rec in batch.records.drain(..) {
                    data.push(&rec, input.arrival);
                }
                buf.clear();
                if fill(&mut rest, &mut buf, 1 << 20)? && buf.is_empty() {
                    break;
                }
            }
            parser.finish(&mut batch);
            batch.dialect = parser.dialect();
        }
        Reader::Query(_) => {
            // Databases are read by path (`load_query`), never as a stream.
            return Ok(Err("a database cannot be read from a stream".into()));
        }
        Reader::Whole(mut parser) => {
            let mut bytes = input.head;
            input.rest.read_to_end(&mut bytes)?;
            if let Err(message) = parser.parse(&bytes, &mut batch) {
                return Ok(Err(message));
            }
            for rec in batch.records.drain(..) {
                data.push(&rec, input.arrival);
            }
        }
    }
    Ok(Ok(Cold {
        data,
        tally: batch.tally,
        config: batch.config,
        dialect: batch.dialect,
    }))
}

/// A log format, by identity: compared, hashed and printed by its name.
#[derive(Clone, Copy)]
pub struct Format(&'static dyn LogFormat);

impl Format {
    pub const JSONL: Format = Format(&jsonl::Jsonl);
    pub const HF_TRAINER_STATE: Format = Format(&trainer_state::TrainerState);
    pub const CSV: Format = Format(&csv::Csv);
    pub const TFEVENTS: Format = Format(&tfevents::TfEvents);
    pub const WANDB: Format = Format(&wandb::Wandb);
    pub const PRINTED: Format = Format(&printed::Printed);
    pub const MLFLOW: Format = Format(&mlflow_files::MlflowFiles);
    pub const MLFLOW_SQLITE: Format = Format(&mlflow_sqlite::MlflowSqlite);
    pub const TRACKIO: Format = Format(&trackio::Trackio);

    pub fn as_str(self) -> &'static str {
        self.0.name()
    }

    /// The format named `name` (as `as_str` gives it).
    pub fn from_name(name: &str) -> Option<Format> {
        ALL.iter().map(|f| Format(*f)).find(|f| f.as_str() == name)
    }

    /// Every format lrtop reads.
    pub fn all() -> impl Iterator<Item = Format> {
        ALL.iter().map(|f| Format(*f))
    }

    pub(crate) fn spec(self) -> &'static dyn LogFormat {
        self.0
    }
}

impl PartialEq for Format {
    fn eq(&self, other: &Format) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Format {}

impl std::hash::Hash for Format {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl fmt::Debug for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Format({})", self.as_str())
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn lower_name(path: &Path) -> Option<String> {
    Some(path.file_name()?.to_str()?.to_ascii_lowercase())
}

/// The format a name alone settles (`trainer_state.json`, `*.csv`, ...).
pub(crate) fn format_by_name(path: &Path) -> Option<Format> {
    let name = lower_name(path)?;
    best_by_name(&name)
        .filter(|(_, c)| *c >= NameClaim::Likely)
        .map(|(f, _)| f)
}

/// Could a file of this name be a database that holds several runs (and
/// gain runs while it is followed)?
pub(crate) fn may_hold_runs(path: &Path) -> bool {
    lower_name(path).is_some_and(|name| {
        Format::all().any(|f| f.0.holds_runs() && f.0.claim_name(&name) != NameClaim::No)
    })
}

/// Should a directory scan pick up this file? A name of a format says so;
/// a generic name (`*.log`, `*.out`) only with content lrtop recognises
/// (a printed format's line, a CSV header). W&B's copy of the console
/// (`files/output.log` of a run directory) repeats the run file.
pub(crate) fn is_log_in_scan(path: &Path) -> bool {
    let Some(name) = lower_name(path) else {
        return false;
    };
    match best_by_name(&name) {
        None => false,
        Some((_, NameClaim::Weak)) => {
            if is_wandb_internal(path) {
                return false;
            }
            let mut head = Vec::new();
            let read = std::fs::File::open(path)
                .and_then(|f| f.take(SNIFF_BYTES as u64).read_to_end(&mut head));
            let complete = head.len() < SNIFF_BYTES;
            read.is_ok()
                && Format::all().any(|f| match f.0.claim_file(path, &head, complete) {
                    ContentClaim::Strong => true,
                    ContentClaim::Plain => f == Format::PRINTED || f == Format::CSV,
                    _ => false,
                })
        }
        Some(_) => true,
    }
}

/// W&B's own files next to a run: the console copy (`<run>/files/
/// output.log`) and its debug logs (`<run>/logs/`, `wandb/debug*.log`).
fn is_wandb_internal(path: &Path) -> bool {
    let has_run_file = |d: &Path| {
        std::fs::read_dir(d).is_ok_and(|mut entries| {
            entries.any(|e| e.is_ok_and(|e| e.path().extension().is_some_and(|x| x == "wandb")))
        })
    };
    let parent = path.parent();
    let in_run_subdir = parent
        .filter(|d| d.ends_with("files") || d.ends_with("logs"))
        .and_then(Path::parent)
        .is_some_and(has_run_file);
    let debug_log = parent.is_some_and(|d| d.ends_with("wandb"))
        && lower_name(path).is_some_and(|n| n.starts_with("debug"));
    in_run_subdir || debug_log
}

fn best_by_name(name: &str) -> Option<(Format, NameClaim)> {
    Format::all()
        .map(|f| (f, f.0.claim_name(name)))
        .filter(|(_, c)| *c > NameClaim::No)
        .max_by_key(|(_, c)| *c)
}

/// The member files of a group source of `format` in `dir`.
pub(crate) fn group_members(dir: &Path, format: Format) -> Vec<PathBuf> {
    format.0.members(dir)
}

/// The format that keeps a run as the directory `dir`, if any.
pub(crate) fn format_of_dir(dir: &Path) -> Option<Format> {
    Format::all().find(|f| f.0.claims_dir(dir))
}

/// The format of content starting with `head`, the name aside. None: not
/// enough to decide yet.
pub(crate) fn sniff(head: &[u8], complete: bool) -> Option<Format> {
    detect(None, head, complete)
}

/// The format of a file from its name and first bytes. `complete`: `head`
/// is the whole input (or all that will be looked at). None: not enough to
/// decide yet.
///
/// A certain name decides; then a strong content mark; then a likely name;
/// then content that looks like a format (the first in `ALL` order, unless
/// one before it is still undecided); then a weak name.
pub(crate) fn detect(path: Option<&Path>, head: &[u8], complete: bool) -> Option<Format> {
    let named = path.and_then(lower_name).and_then(|n| best_by_name(&n));
    if let Some((f, NameClaim::Certain)) = named {
        return Some(f);
    }
    let claims: Vec<(Format, ContentClaim)> = Format::all()
        .map(|f| {
            let claim = match path {
                Some(p) => f.0.claim_file(p, head, complete),
                None => f.0.claim_content(head, complete),
            };
            (f, claim)
        })
        .collect();
    if let Some((f, _)) = claims.iter().find(|(_, c)| *c == ContentClaim::Strong) {
        return Some(*f);
    }
    if let Some((f, NameClaim::Likely)) = named {
        return Some(f);
    }
    for (f, claim) in &claims {
        match claim {
            ContentClaim::Plain => return Some(*f),
            ContentClaim::Undecided if !complete => return None,
            _ => {}
        }
    }
    named.map(|(f, _)| f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffing() {
        assert_eq!(sniff(b"", true), None);
        assert_eq!(sniff(b" \n", true), None);
        assert_eq!(sniff(b"step,loss\n", false), Some(Format::CSV));
        assert_eq!(sniff(b"{\"a\": 1}\n{\"a\": 2}", false), Some(Format::JSONL));
        assert_eq!(
            sniff(b"\xEF\xBB\xBF{\"a\": NaN}\n", false),
            Some(Format::JSONL)
        );
        assert_eq!(sniff(b"{\"a\": 1", false), None);
        assert_eq!(sniff(b"{\"a\": 1", true), Some(Format::JSONL));
        assert_eq!(
            sniff(b"{\"epoch\": 1, \"log_history\": []}", true),
            Some(Format::HF_TRAINER_STATE)
        );
        assert_eq!(
            sniff(b"{\n  \"epoch\": 1,\n  \"log_history\": [\n", false),
            Some(Format::HF_TRAINER_STATE)
        );
    }

    #[test]
    fn names_first() {
        let p = |s: &str| Some(Path::new(s).to_path_buf());
        assert_eq!(
            detect(p("a/metrics.csv").as_deref(), b"{", true),
            Some(Format::CSV)
        );
        assert_eq!(
            detect(p("x/trainer_state.json").as_deref(), b"", false),
            Some(Format::HF_TRAINER_STATE)
        );
        assert_eq!(
            detect(p("log.jsonl").as_deref(), b"", false),
            Some(Format::JSONL)
        );
        assert_eq!(detect(p("log.json").as_deref(), b"", false), None);
        assert_eq!(
            detect(p("log.json").as_deref(), b"{\"a\":1}\n", false),
            Some(Format::JSONL)
        );
    }

    #[test]
    fn formats_have_distinct_names() {
        let names: Vec<&str> = Format::all().map(Format::as_str).collect();
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(names.len(), unique.len());
        for name in names {
            assert_eq!(Format::from_name(name).map(Format::as_str), Some(name));
        }
    }
}
