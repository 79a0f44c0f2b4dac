use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = lrtop::cli::Cli::parse();
    match lrtop::cmd::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            lrtop::cmd::exit_code(&err)
        }
    }
}
