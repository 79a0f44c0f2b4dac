//! Entering and leaving the full-screen terminal, restoring it on every exit
//! path: normal return, error, and panic.

use std::io::{self, Write};
use std::sync::Once;

use crossterm::event::{DisableMouseCapture, EnableMouseCapture};
use crossterm::execute;
use ratatui::DefaultTerminal;

static HOOK: Once = Once::new();

pub fn enter(mouse: bool) -> io::Result<DefaultTerminal> {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
    });
    crate::oom::entering_full_screen();
    let terminal = ratatui::try_init()?;
    if mouse {
        execute!(io::stdout(), EnableMouseCapture)?;
    }
    Ok(terminal)
}

/// Safe to call more than once.
pub fn restore() {
    let _ = execute!(io::stdout(), DisableMouseCapture);
    ratatui::restore();
    // The terminal's own drop shows the cursor; an exit that skips it
    // (the signal watchdog's) must too.
    let _ = execute!(io::stdout(), crossterm::cursor::Show);
    let _ = io::stdout().flush();
    crate::oom::left_full_screen();
}

/// Draws once into an off-screen buffer of `width` x `height` and returns
/// it as plain text, trailing blanks trimmed (for pipes, files and tests).
pub fn render_text(width: u16, height: u16, draw: impl FnOnce(&mut ratatui::Frame)) -> String {
    use ratatui::backend::TestBackend;
    let mut terminal = ratatui::Terminal::new(TestBackend::new(width.max(1), height.max(1)))
        .expect("the test backend cannot fail");
    terminal.draw(draw).expect("the test backend cannot fail");
    let buffer = terminal.backend().buffer();
    let mut out = String::new();
    for y in 0..buffer.area.height {
        let mut row = String::new();
        for x in 0..buffer.area.width {
            row.push_str(buffer[(x, y)].symbol());
        }
        out.push_str(row.trim_end());
        out.push('\n');
    }
    out
}
