//! One followed file: the state machine behind `follow`. Each `check`
//! looks at the path (stat), notices creation, deletion, replacement and
//! rewrites, and reads what was appended since the last check.

use std::fs::{self, File, Metadata};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::batch::Batch;
use super::event::FollowStatus;
use super::fields::FieldMap;
use super::file_id::{FileId, file_id};
use super::formats::{Format, Reader, Rewrite, SNIFF_BYTES, Whole, detect};
use super::out::Out;

/// Bytes kept from the file's start and from just before our offset, to
/// tell an append from a rewrite that made the file longer than before.
const FINGERPRINT: usize = 64;
const READ_SIZE: usize = 1 << 20;
const APPEND_READ: usize = 64 << 10;
/// A file renamed away (logrotate's `create`) is still read while its
/// writer, which keeps its descriptor, goes on appending: until it has been
/// quiet this long or is deleted.
const DRAIN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// The previous file at the path, still read after a rotation.
struct Drain {
    open: Open,
    parser: Box<dyn super::formats::StreamParser>,
    last_growth: std::time::Instant,
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

/// Hard links to a file: 0 once it was deleted (and only held open).
fn links(meta: &Metadata) -> u64 {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        meta.nlink()
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        1
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

/// How the reader of a followed file is made (a group member or a run of a
/// database needs more than the format).
#[derive(Debug, Clone, Default)]
pub(crate) enum ReaderOf {
    /// The format's own reader.
    #[default]
    File,
    /// A member of the run directory `0`.
    Member(PathBuf),
    /// The run with this key in a file that holds several.
    Part(String),
}

pub(crate) struct Tail {
    path: PathBuf,
    reader_of: ReaderOf,
    format: Option<Format>,
    map: FieldMap,
    reader: Option<Reader>,
    open: Option<Open>,
    phase: Phase,
    batch: Batch,
    buf: Vec<u8>,
    last_detail: Option<String>,
    draining: Option<Drain>,
}

impl Tail {
    pub(crate) fn with_reader(
        path: PathBuf,
        format: Option<Format>,
        map: FieldMap,
        reader_of: ReaderOf,
    ) -> Self {
        Tail {
            path,
            reader_of,
            format,
            map,
            reader: None,
            open: None,
            phase: Phase::Start,
            batch: Batch::default(),
            buf: Vec::new(),
            last_detail: None,
            draining: None,
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Reading what is there, or still draining a rotated-away file: a
    /// job to check again soon.
    pub(crate) fn busy(&self) -> bool {
        self.draining.is_some() || matches!(self.phase, Phase::Start | Phase::CatchingUp)
    }

    pub(crate) fn check(&mut self, out: &mut Out) {
        self.move_to_newer_file();
        self.drain_old_file();
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
        let settled = match self.reader {
            None => self.choose_format(out),
            Some(Reader::Whole(_)) => self.check_whole(&meta, out),
            Some(Reader::Stream(_)) => self.check_stream(&meta, out),
            Some(Reader::Query(_)) => self.check_query(&meta, out),
        };
        out.flush(&mut self.batch);
        // Buffers are for reading, not for waiting: a thousand idle
        // followers hold none.
        self.buf = Vec::new();
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
            // A whole document that comes back holds the same history (and
            // one that shrank is caught as such); a stream restarts, and
            // the old file, renamed away, is still read (see Drain).
            if matches!(self.reader, Some(Reader::Stream(_))) {
                self.keep_draining_old_file();
            } else {
                self.finish_old_file();
            }
            out.flush(&mut self.batch);
            self.open = None;
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
        if matches!(self.reader, Some(Reader::Whole(_))) {
            // Rewritten whole (e.g. saved through a temporary file): the
            // entries already sent are still the first ones.
            self.open = None;
            return;
        }
        self.keep_draining_old_file();
        out.flush(&mut self.batch);
        self.open = None;
        out.status(FollowStatus::Rotated, None);
        self.phase = Phase::CatchingUp;
    }

    /// The open file left the path: what it holds now is read, and it is
    /// kept (with its parser) to read what its writer still appends; the
    /// path's next file gets a fresh parser.
    fn keep_draining_old_file(&mut self) {
        self.read_available();
        if let (Some(open), Some(Reader::Stream(parser))) = (self.open.take(), self.reader.take()) {
            if let Some(mut old) = self.draining.replace(Drain {
                open,
                parser,
                last_growth: std::time::Instant::now(),
            }) {
                old.parser.finish(&mut self.batch);
            }
            self.reader = self.format.map(|f| self.new_reader(f));
        }
    }

    /// Reads what a rotated-away file's writer appended since; lets it go
    /// once quiet for DRAIN_GRACE or deleted.
    fn drain_old_file(&mut self) {
        let Some(drain) = &mut self.draining else {
            return;
        };
        let before = drain.open.offset;
        self.buf.resize(READ_SIZE, 0);
        loop {
            match drain.open.file.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => {
                    drain.open.note_read(&self.buf[..n]);
                    drain.parser.feed(&self.buf[..n], &mut self.batch);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        if drain.open.offset > before {
            drain.last_growth = std::time::Instant::now();
            return;
        }
        let deleted = drain.open.file.metadata().is_ok_and(|m| links(&m) == 0);
        if deleted || drain.last_growth.elapsed() >= DRAIN_GRACE {
            drain.parser.finish(&mut self.batch);
            self.draining = None;
        }
    }

    fn new_reader(&self, format: Format) -> Reader {
        let spec = format.spec();
        match &self.reader_of {
            ReaderOf::File => spec.reader(&self.map),
            ReaderOf::Member(dir) => spec.member_reader(dir, &self.path, &self.map),
            ReaderOf::Part(key) => spec.part_reader(&self.map, key),
        }
    }

    fn finish_old_file(&mut self) {
        if matches!(self.reader, Some(Reader::Stream(_))) {
            self.read_available();
            if let Some(Reader::Stream(p)) = &mut self.reader {
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
        self.reader = Some(self.new_reader(format));
        out.format(format);
        match fs::metadata(&self.path) {
            Ok(meta) if matches!(self.reader, Some(Reader::Whole(_))) => {
                self.check_whole(&meta, out)
            }
            Ok(meta) if matches!(self.reader, Some(Reader::Query(_))) => {
                self.check_query(&meta, out)
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
            let head = read_head(&mut open.file, open.offset).unwrap_or_default();
            let Some(Reader::Stream(parser)) = &mut self.reader else {
                return false;
            };
            match parser.rewritten(&head) {
                Rewrite::Undecided => return false,
                // The parser knows what it sent (Lightning's rewrite with
                // a grown header): it skips that itself.
                Rewrite::Continues => {}
                Rewrite::FromStart => {
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

    /// Reads to the end of the file, sending full batches on the way.
    fn read_available_to(&mut self, out: &mut Out) {
        while self.read_some() {
            if self.batch.is_full() {
                out.flush(&mut self.batch);
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
        let (Some(open), Some(Reader::Stream(parser))) = (&mut self.open, &mut self.reader) else {
            return false;
        };
        // A big read while catching up; appends are small.
        let size = if self.phase == Phase::CatchingUp {
            READ_SIZE
        } else {
            APPEND_READ
        };
        self.buf.resize(size, 0);
        loop {
            match open.file.read(&mut self.buf) {
                Ok(0) => return false,
                Ok(n) => {
                    open.note_read(&self.buf[..n]);
                    parser.feed(&self.buf[..n], &mut self.batch);
                    self.batch.dialect = parser.dialect();
                    return true;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
    }

    /// A whole document (trainer_state.json): parsed whole when it changed.
    fn check_whole(&mut self, meta: &Metadata, out: &mut Out) -> bool {
        let (Some(open), Some(Reader::Whole(parser))) = (&mut self.open, &mut self.reader) else {
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
        match parser.parse(&bytes, &mut attempt) {
            Ok(whole) => {
                if whole == Whole::Shrank {
                    out.status(FollowStatus::Truncated, None);
                }
                self.batch.absorb(attempt);
                self.last_detail = None;
                true
            }
            Err(message) => {
                // Most likely caught while being written: try again on the
                // next change, and say why nothing shows meanwhile.
                let detail = self
                    .format
                    .map(|f| f.spec().invalid(&self.path, message.clone()).to_string())
                    .or(Some(message));
                if detail != self.last_detail {
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
    }

    /// A database: asked for new rows when it (or its write-ahead log)
    /// changed. Each poll is one short read transaction, so the writer is
    /// never locked out for long.
    fn check_query(&mut self, meta: &Metadata, out: &mut Out) -> bool {
        let (Some(open), Some(Reader::Query(reader))) = (&mut self.open, &mut self.reader) else {
            return false;
        };
        let wal = fs::metadata(wal_path(&self.path)).ok();
        let stamp = (
            meta.len() ^ wal.as_ref().map_or(0, |w| w.len().rotate_left(32)),
            meta.modified()
                .ok()
                .max(wal.and_then(|w| w.modified().ok())),
        );
        if open.seen == Some(stamp) {
            return self.phase == Phase::Following;
        }
        match reader.poll(&self.path, &mut self.batch) {
            Ok(()) => {
                open.seen = Some(stamp);
                self.last_detail = None;
                true
            }
            Err(message) => {
                if Some(&message) != self.last_detail.as_ref() {
                    self.last_detail = Some(message.clone());
                    out.status(FollowStatus::Reading, Some(message));
                }
                false
            }
        }
    }

    /// A format whose writer moves on to newer files (HF's checkpoints)
    /// is followed into the newest; the records sent so far are the first
    /// ones of that file too.
    fn move_to_newer_file(&mut self) {
        let Some(format) = self.format else {
            return;
        };
        if let Some(newer) = format.spec().newer_file(&self.path) {
            self.path = newer;
            self.open = None;
        }
    }
}

/// SQLite's write-ahead log next to a database.
fn wal_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_os_string();
    name.push("-wal");
    PathBuf::from(name)
}
