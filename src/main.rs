//! The `flags` binary: parse the command line, run the crawl or the server, exit with its code.

use std::process::ExitCode;

use clap::Parser;
use flags::cli::{Cli, Command, UsageError};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            // One line, as every usage error: clap's first line, without its usage block.
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            let first = first.strip_prefix("error: ").unwrap_or(first);
            eprintln!("{}", UsageError(format!("{first} (see flags --help)")));
            return ExitCode::from(flags::report::EXIT_USAGE);
        }
    };
    let code = match &cli.command {
        Some(Command::Serve(args)) => flags::serve(args),
        Some(Command::Crawl(args)) => flags::site_crawl::run(args),
        Some(Command::Status(args)) => flags::status::run(args),
        None => flags::crawl::run(&cli.crawl),
    };
    ExitCode::from(code)
}
