//! The main entry point into circuitscope: parse the command line, run it, print one clear
//! line on error.

use clap::Parser;

fn main() {
    let cli = circuitscope::cli::Cli::parse();
    if let Err(e) = circuitscope::cli::run(cli) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
