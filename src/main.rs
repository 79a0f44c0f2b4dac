use std::process::ExitCode;

use clap::Parser;

/// A refused allocation prints what to do and exits 1, instead of aborting.
#[global_allocator]
static ALLOCATOR: lrtop::oom::ReportingAllocator = lrtop::oom::ReportingAllocator;

fn main() -> ExitCode {
    let cli = lrtop::cli::Cli::parse();
    match lrtop::cmd::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // File and metric names come from the user's disk: no escape
            // sequence in them reaches the terminal.
            eprintln!(
                "error: {}",
                lrtop::format::printable_lines(&format!("{err:#}"))
            );
            lrtop::cmd::exit_code(&err)
        }
    }
}
