//! One followed file: the state machine behind `follow`. Each `check`
//! looks at the path (stat), notices creation, deletion, replacement and
//! rewrites, and reads what was appended since the last check.

use std::fs::{self, File, Metadata};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::Format;
use super::discover::checkpoint_of;
use super::fields::FieldMap;
use super::follow::FollowStatus;
use super::parser::{Batch, Out, Parser};
use super::sniff::{SNIFF_BYTES, detect};

/// Bytes kept from the file's start and from just before our offset, to
/// tell an append from a rewrite that made the file longer than before.
const FINGERPRINT: usize = 64;
const READ_SIZE: usize = 1 << 20;

/// A file's identity: a new one after rename-and-create, the same after
/// truncation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileId(u64, u64);

#[cfg(unix)]
pub(crate) fn file_id(meta: &Metadata) -> FileId {
    use std::os::unix::fs::MetadataExt;
    FileId(meta.dev(), meta.ino())
}

/// Without inode numbers, replacement shows only in the content.
#[cfg(not(unix))]
pub(crate) fn file_id(_meta: &Metadata) -> FileId {
    FileId(0, 0)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Start,
    Waiting,
    Deleted,
    CatchingUp,
    Following,
}

/// The open file and how far it was read.
#[derive(Debug)]
struct Open {
    file: File,
    id: FileId,
    offset: u64,
    head: Vec<u8>,
    tail: Vec<u8>,
    /// Size and mtime at the last check, to skip unchanged files.
    seen: Option<(u64, Option<SystemTime>)>,
}

impl Open {
    fn new(file: File, id: FileId) -> Self {
        Open {
            file,
            id,
            offset: 0,
            head: Vec::new(),
            tail: Vec::new(),
            seen: None,
        }
    }

    fn restart(&mut self) -> io::Result<()> {
        self.file.seek(SeekFrom::Start(0))?;
        self.offset = 0;
        self.head.clear();
        self.tail.clear();
        self.seen = None;
        Ok(())
    }

    fn note_read(&mut self, data: &[u8]) {
        if self.offset < FINGERPRINT as u64 {
            let take = (FINGERPRINT - self.offset as usize).min(data.len());
            self.head.extend_from_slice(&data[..take]);
        }
        self.offset += data.len() as u64;
        if data.len() >= FINGERPRINT {
            self.tail.clear();
            self.tail
                .extend_from_slice(&data[data.len() - FINGERPRINT..]);
        } else {
            self.tail.extend_from_slice(data);
            let extra = self.tail.len().saturating_sub(FINGERPRINT);
            self.tail.drain(..extra);
        }
    }

    /// Are the bytes we read still there (start of file, end of our part)?
    fn unchanged(&mut self) -> bool {
        let head = read_at(&mut self.file, 0, self.head.len(), self.offset);
        let tail_at = self.offset - self.tail.len() as u64;
        let tail = read_at(&mut self.file, tail_at, self.tail.len(), self.offset);
        head.is_ok_and(|h| h == self.head) && tail.is_ok_and(|t| t == self.tail)
    }

    fn read_all(&mut self) -> io::Result<Vec<u8>> {
        self.file.seek(SeekFrom::Start(0))?;
        let mut bytes = Vec::new();
        self.file.read_to_end(&mut bytes)?;
        Ok(bytes)
    }
}

/// Reads `len` bytes at `pos`, leaving the file position at `resume`.
fn read_at(file: &mut File, pos: u64, len: usize, resume: u64) -> io::Result<Vec<u8>> {
    let mut buf = vec![0; len];
    file.seek(SeekFrom::Start(pos))?;
    let result = file.read_exact(&mut buf);
    file.seek(SeekFrom::Start(resume))?;
    result.map(|_| buf)
}

/// The file's first bytes (up to `SNIFF_BYTES`), leaving the position at `resume`.
fn read_head(file: &mut File, resume: u64) -> io::Result<Vec<u8>> {
    let mut head = Vec::new();
    file.seek(SeekFrom::Start(0))?;
    let result = file
        .by_ref()
        .take(SNIFF_BYTES as u64)
        .read_to_end(&mut head);
    file.seek(SeekFrom::Start(resume))?;
    result.map(|_| head)
}

/// How a file that no longer holds what we read was rewritten.
enum Rewrite {
    /// The first line is still being written: decide later.
    Undecided,
    /// Same rows under a grown CSV header (Lightning's CSVLogger).
    HeaderGrew,
    Truncated,
}

pub(crate) struct Tail {
    path: PathBuf,
    format: Option<Format>,
    map: FieldMap,
    parser: Option<Parser>,
    open: Option<Open>,
    phase: Phase,
    batch: Batch,
    buf: Vec<u8>,
    last_detail: Option<String>,
}

impl Tail {
    pub(crate) fn new(path: PathBuf, format: Option<Format>, map: FieldMap) -> Self {
        Tail {
            path,
            format,
            map,
            parser: None,
            open: None,
            phase: Phase::Start,
            batch: Batch::default(),
            buf: Vec::new(),
            last_detail: None,
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn check(&mut self, out: &mut Out) {
        self.move_to_newer_checkpoint();
        let meta = match fs::metadata(&self.path) {
            Ok(meta) if meta.is_file() => meta,
            Ok(_) => return self.missing(out, Some("not a regular file".into())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return self.missing(out, None),
            Err(e) => return self.missing(out, Some(e.to_string())),
        };
        let id = file_id(&meta);
        if self.open.as_ref().is_some_and(|o| o.id != id) {
            self.replaced(out);
        }
        if self.open.is_none() {
            match File::open(&self.path) {
                Ok(file) => self.opened(Open::new(file, id), out),
                Err(e) => return self.missing(out, Some(e.to_string())),
            }
        }
        let settled = match self.parser {
            None => self.choose_format(out),
            Some(Parser::TrainerState { .. }) => self.check_whole(&meta, out),
            Some(_) => self.check_stream(&meta, out),
        };
        self.batch.flush(out);
        if settled && self.phase == Phase::CatchingUp {
            self.phase = Phase::Following;
            out.status(FollowStatus::Following, None);
        }
    }

    fn opened(&mut self, open: Open, out: &mut Out) {
        self.open = Some(open);
        if matches!(self.phase, Phase::Start | Phase::Waiting | Phase::Deleted) {
            out.status(FollowStatus::Reading, None);
            self.phase = Phase::CatchingUp;
        }
    }

    /// The path is gone (or unreadable). A file we had open was deleted or
    /// renamed away: what was appended to it before is still read.
    fn missing(&mut self, out: &mut Out, detail: Option<String>) {
        if self.open.is_some() {
            self.finish_old_file();
            self.batch.flush(out);
            self.open = None;
            // A trainer_state that comes back holds the same history (and
            // one that shrank is caught as a truncation); a stream restarts.
            if let Some(p @ (Parser::Jsonl(_) | Parser::Csv(_))) = &mut self.parser {
                p.reset();
            }
            self.phase = Phase::Deleted;
            out.status(FollowStatus::Deleted, detail);
        } else if self.phase == Phase::Start {
            self.phase = Phase::Waiting;
            self.last_detail.clone_from(&detail);
            out.status(FollowStatus::Waiting, detail);
        } else if detail.is_some() && detail != self.last_detail {
            // e.g. it appeared but cannot be read yet: say why.
            self.last_detail.clone_from(&detail);
            let status = if self.phase == Phase::Deleted {
                FollowStatus::Deleted
            } else {
                FollowStatus::Waiting
            };
            out.status(status, detail);
        }
    }

    /// Another file took the path (rotation by rename and create).
    fn replaced(&mut self, out: &mut Out) {
        if matches!(self.parser, Some(Parser::TrainerState { .. })) {
            // Rewritten whole (e.g. saved through a temporary file): the
            // entries already sent are still the first ones.
            self.open = None;
            return;
        }
        self.finish_old_file();
        self.batch.flush(out);
        self.open = None;
        if let Some(p) = &mut self.parser {
            p.reset();
        }
        out.status(FollowStatus::Rotated, None);
        self.phase = Phase::CatchingUp;
    }

    fn finish_old_file(&mut self) {
        if matches!(self.parser, Some(Parser::Jsonl(_) | Parser::Csv(_))) {
            self.read_available();
            if let Some(p) = &mut self.parser {
                p.finish(&mut self.batch);
            }
        }
    }

    /// Decides the format from the name or the first bytes. False while
    /// there is too little to tell (nothing is consumed meanwhile).
    fn choose_format(&mut self, out: &mut Out) -> bool {
        let Some(open) = &mut self.open else {
            return false;
        };
        let format = match self.format {
            Some(format) => Some(format),
            None => {
                let head = read_head(&mut open.file, 0).ok();
                head.and_then(|h| detect(Some(&self.path), &h, false))
            }
        };
        let Some(format) = format else {
            // An empty file is caught up with.
            return true;
        };
        self.format = Some(format);
        self.parser = Some(Parser::new(format, &self.map));
        out.format(format);
        match fs::metadata(&self.path) {
            Ok(meta) if matches!(self.parser, Some(Parser::TrainerState { .. })) => {
                self.check_whole(&meta, out)
            }
            Ok(meta) => self.check_stream(&meta, out),
            Err(_) => false,
        }
    }

    fn check_stream(&mut self, meta: &Metadata, out: &mut Out) -> bool {
        let Some(open) = &mut self.open else {
            return false;
        };
        let stamp = (meta.len(), meta.modified().ok());
        let changed = open.seen != Some(stamp);
        if !changed && self.phase == Phase::Following {
            return true;
        }
        if meta.len() < open.offset || (changed && open.offset > 0 && !open.unchanged()) {
            match self.rewrite_kind() {
                Rewrite::Undecided => return false,
                Rewrite::HeaderGrew => {
                    if let Some(Parser::Csv(csv)) = &mut self.parser {
                        csv.continue_after_rewrite();
                    }
                }
                Rewrite::Truncated => {
                    if let Some(p) = &mut self.parser {
                        p.reset();
                    }
                    out.status(FollowStatus::Truncated, None);
                    self.phase = Phase::CatchingUp;
                }
            }
            let Some(open) = &mut self.open else {
                return false;
            };
            if let Err(e) = open.restart() {
                out.status(FollowStatus::Waiting, Some(e.to_string()));
                return false;
            }
        }
        if let Some(open) = &mut self.open {
            open.seen = Some(stamp);
        }
        self.read_available_to(out);
        true
    }

    fn rewrite_kind(&mut self) -> Rewrite {
        let (Some(Parser::Csv(csv)), Some(open)) = (&self.parser, &mut self.open) else {
            return Rewrite::Truncated;
        };
        let old: Vec<&str> = csv.header_names().collect();
        if old.is_empty() {
            return Rewrite::Truncated;
        }
        let Ok(head) = read_head(&mut open.file, open.offset) else {
            return Rewrite::Truncated;
        };
        let Some(nl) = memchr::memchr(b'\n', &head) else {
            return if head.len() < SNIFF_BYTES {
                Rewrite::Undecided
            } else {
                Rewrite::Truncated
            };
        };
        let new = header_cells(&head[..nl]);
        let grew = new.len() > old.len() && old.iter().all(|o| new.iter().any(|n| n == o));
        if grew {
            Rewrite::HeaderGrew
        } else {
            Rewrite::Truncated
        }
    }

    /// Reads to the end of the file, sending full batches on the way.
    fn read_available_to(&mut self, out: &mut Out) {
        while self.read_some() {
            if self.batch.is_full() {
                self.batch.flush(out);
                if !out.alive() {
                    return;
                }
            }
        }
    }

    fn read_available(&mut self) {
        while self.read_some() {}
    }

    /// One read; false at the end of the file (or on an error).
    fn read_some(&mut self) -> bool {
        let (Some(open), Some(parser)) = (&mut self.open, &mut self.parser) else {
            return false;
        };
        self.buf.resize(READ_SIZE, 0);
        loop {
            match open.file.read(&mut self.buf) {
                Ok(0) => return false,
                Ok(n) => {
                    open.note_read(&self.buf[..n]);
                    parser.feed(&self.buf[..n], &mut self.batch);
                    return true;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
    }

    /// trainer_state.json: parse the whole file when it changed.
    fn check_whole(&mut self, meta: &Metadata, out: &mut Out) -> bool {
        let (Some(open), Some(parser)) = (&mut self.open, &mut self.parser) else {
            return false;
        };
        let stamp = (meta.len(), meta.modified().ok());
        if open.seen == Some(stamp) {
            return self.phase == Phase::Following;
        }
        open.seen = Some(stamp);
        let Ok(bytes) = open.read_all() else {
            return false;
        };
        let mut attempt = Batch::default();
        if parser.parse_whole(&bytes, &mut attempt, out) {
            self.batch.absorb(attempt);
            self.last_detail = None;
            true
        } else {
            // Most likely caught while being written: try again on the next
            // change, and say why nothing shows meanwhile.
            let detail = attempt.last_error();
            if detail.is_some() && detail != self.last_detail {
                self.last_detail.clone_from(&detail);
                let status = if self.phase == Phase::Following {
                    FollowStatus::Following
                } else {
                    FollowStatus::Reading
                };
                out.status(status, detail);
            }
            false
        }
    }

    /// HF saves each checkpoint in a new `checkpoint-N/` directory with the
    /// whole log history so far: move on to the newest.
    fn move_to_newer_checkpoint(&mut self) {
        if self.format != Some(Format::HfTrainerState) {
            return;
        }
        let Some((run_dir, current)) = checkpoint_of(&self.path) else {
            return;
        };
        let Ok(entries) = fs::read_dir(&run_dir) else {
            return;
        };
        let newest = entries
            .flatten()
            .filter_map(|e| {
                let n: u64 = e
                    .file_name()
                    .to_str()?
                    .strip_prefix("checkpoint-")?
                    .parse()
                    .ok()?;
                let state = e.path().join("trainer_state.json");
                (n > current && state.is_file()).then_some((n, state))
            })
            .max_by_key(|(n, _)| *n);
        if let Some((_, state)) = newest {
            // The entries sent so far are the first ones of the new file too.
            self.path = state;
            self.open = None;
        }
    }
}

fn header_cells(line: &[u8]) -> Vec<String> {
    let line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(line);
    let mut row = ::csv::ByteRecord::new();
    match reader.read_byte_record(&mut row) {
        Ok(true) => row
            .iter()
            .map(|c| String::from_utf8_lossy(c.trim_ascii()).into_owned())
            .collect(),
        _ => Vec::new(),
    }
}
