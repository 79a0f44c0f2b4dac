//! One handler per subcommand. Errors meant for the user carry an exit code.

mod attach;
mod dashboard;
mod policy;
mod range_test;
mod train;
mod tune;

use std::process::ExitCode;

use crate::cli::{Cli, Command};

pub use crate::error::{UsageError, usage};

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Policy { command } => policy::run(command),
        Command::Train(args) => train::run(*args),
        Command::Attach(args) => attach::run(args),
        Command::RangeTest(args) => range_test::run(*args),
        Command::Tune(args) => tune::run(*args),
    }
}

/// Exit code for an error: 2 for bad input, 3 for an alert at the
/// `--fail-on` level, 4 for a diverged training run, 1 otherwise.
pub fn exit_code(err: &anyhow::Error) -> ExitCode {
    if let Some(check) = err
        .chain()
        .find_map(|e| e.downcast_ref::<crate::error::CheckFailed>())
    {
        return ExitCode::from(check.code);
    }
    let is_usage = err.chain().any(|e| {
        e.downcast_ref::<UsageError>().is_some()
            || e.downcast_ref::<crate::policy::SpecError>().is_some()
    });
    ExitCode::from(if is_usage { 2 } else { 1 })
}
