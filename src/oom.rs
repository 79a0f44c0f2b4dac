//! Running out of memory ends lrtop with a sentence, not a Rust abort.
//!
//! Rust's default reaction to a refused allocation is "memory allocation of
//! N bytes failed", a backtrace when `RUST_BACKTRACE` is set, and SIGABRT
//! (exit 134, maybe a core file) — with the terminal left in raw mode when
//! the dashboard was up. The stable way to change that is the global
//! allocator: [`ReportingAllocator`] is the system allocator, except that a
//! null answer gives the terminal back, prints what happened and what to
//! do, and exits with 1. Nothing on that path allocates: the message is
//! formatted into a stack buffer and written with `write(2)`.
//!
//! Training jobs are estimated before they allocate (`train::memory`); this
//! is for what no estimate foresaw: a log bigger than the memory limit, a
//! job sharing the machine, an estimate that was low.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

/// The system allocator that reports refusals instead of aborting.
pub struct ReportingAllocator;

// SAFETY: every call is forwarded to `System` with the same arguments; a
// null result never returns (the process exits).
unsafe impl GlobalAlloc for ReportingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc(layout) };
        if ptr.is_null() {
            out_of_memory(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if ptr.is_null() {
            out_of_memory(layout.size());
        }
        ptr
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if new.is_null() {
            out_of_memory(new_size);
        }
        new
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// The terminal's settings before the dashboard made it raw.
static COOKED: OnceLock<libc::termios> = OnceLock::new();
/// Whether the dashboard owns the terminal now.
static FULL_SCREEN: AtomicBool = AtomicBool::new(false);
/// Set by the first refusal: a second one (while reporting) exits at once.
static REPORTING: AtomicBool = AtomicBool::new(false);

/// Called before the dashboard takes the terminal: remembers its settings
/// so that a refusal can give it back without allocating.
pub fn entering_full_screen() {
    COOKED.get_or_init(|| {
        // SAFETY: tcgetattr writes into the zeroed struct it is given.
        unsafe {
            let mut settings: libc::termios = std::mem::zeroed();
            libc::tcgetattr(libc::STDIN_FILENO, &mut settings);
            settings
        }
    });
    FULL_SCREEN.store(true, Ordering::SeqCst);
}

/// Called once the dashboard has given the terminal back.
pub fn left_full_screen() {
    FULL_SCREEN.store(false, Ordering::SeqCst);
}

fn out_of_memory(bytes: usize) -> ! {
    if REPORTING.swap(true, Ordering::SeqCst) {
        // Another thread is reporting: let it finish its sentence (exiting
        // here would cut it off, leaving exit 1 and nothing said), and
        // exit if it somehow does not within two seconds.
        for _ in 0..200 {
            // SAFETY: usleep only sleeps; it allocates nothing.
            unsafe { libc::usleep(10_000) };
        }
        // SAFETY: _exit ends the process; it never returns.
        unsafe { libc::_exit(1) }
    }
    if FULL_SCREEN.load(Ordering::SeqCst) {
        // Mouse reporting off, cursor shown, main screen back; then the
        // line discipline as it was.
        write_stderr(
            b"\x1b[?1000l\x1b[?1002l\x1b[?1003l\x1b[?1006l\x1b[?1015l\x1b[?25h\x1b[?1049l",
        );
        if let Some(cooked) = COOKED.get() {
            // SAFETY: the settings were read from the same descriptor.
            unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, cooked) };
        }
    }
    let mut message = StackText::<384>::new();
    let _ = write_message(&mut message, bytes);
    write_stderr(message.as_bytes());
    // SAFETY: as above. Not `process::exit`: its exit handlers may allocate.
    unsafe { libc::_exit(1) }
}

/// The sentence a refusal prints.
fn write_message(out: &mut impl std::fmt::Write, bytes: usize) -> std::fmt::Result {
    write!(out, "error: out of memory: the system refused ")?;
    write_size(out, bytes)?;
    writeln!(
        out,
        ". lrtop needs more memory than this process may use (RAM, `ulimit -v`, the job's cgroup): \
         use a smaller --batch-size, --seq-len or model, attach fewer or smaller logs, or raise the limit."
    )
}

/// "2.4 GiB (2576980378 bytes)", formatted without allocating.
fn write_size(out: &mut impl std::fmt::Write, bytes: usize) -> std::fmt::Result {
    let units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < units.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        write!(out, "{bytes} bytes")
    } else {
        write!(out, "{value:.1} {} ({bytes} bytes)", units[unit])
    }
}

fn write_stderr(mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: writes from a valid buffer of the given length.
        let n = unsafe { libc::write(libc::STDERR_FILENO, bytes.as_ptr().cast(), bytes.len()) };
        if n <= 0 {
            return;
        }
        bytes = &bytes[n as usize..];
    }
}

/// Text in a fixed buffer; what does not fit is cut.
struct StackText<const N: usize> {
    bytes: [u8; N],
    len: usize,
}

impl<const N: usize> StackText<N> {
    fn new() -> Self {
        StackText {
            bytes: [0; N],
            len: 0,
        }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl<const N: usize> std::fmt::Write for StackText<N> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let room = N - self.len;
        let take = s.len().min(room);
        self.bytes[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
        self.len += take;
        if take < s.len() {
            Err(std::fmt::Error)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt::Write as _;

    #[test]
    fn the_message_names_the_size_and_what_to_do_and_fits_its_buffer() {
        let mut text = StackText::<384>::new();
        write_message(&mut text, 256_000_000).expect("the message fits the buffer");
        let text = std::str::from_utf8(text.as_bytes()).expect("utf-8");
        assert!(
            text.starts_with(
                "error: out of memory: the system refused 244.1 MiB (256000000 bytes)."
            ),
            "{text}"
        );
        assert!(
            text.contains("--batch-size") && text.ends_with('\n'),
            "{text}"
        );
        let mut small = StackText::<384>::new();
        write_message(&mut small, 24).expect("fits");
        assert!(
            std::str::from_utf8(small.as_bytes())
                .expect("utf-8")
                .contains("refused 24 bytes.")
        );
    }

    #[test]
    fn a_full_buffer_cuts_instead_of_overflowing() {
        let mut text = StackText::<8>::new();
        assert!(write!(text, "0123456789").is_err());
        assert_eq!(text.as_bytes(), b"01234567");
    }
}
