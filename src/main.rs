//! The main entry point into circuitscope: parse the command line, run it, print one clear
//! line on error.

mod cli;

use clap::Parser;
use std::io::Write;

fn main() {
    // `println!` panics when standard output cannot be written (a full disk, /dev/full, a
    // closed pipe); that is an I/O error like any other: one line, exit status 1.
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let msg = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if let Some(why) = msg.strip_prefix("failed printing to stdout: ") {
            let _ = writeln!(std::io::stderr(), "error: <stdout>: cannot write: {why}");
            std::process::exit(1);
        }
        default(info);
    }));
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        // Help, version or a usage error: clap's text, and its exit status (unless the text
        // itself cannot be written).
        Err(e) => {
            if let Err(io) = e.print() {
                let _ = writeln!(std::io::stderr(), "error: <stdout>: cannot write: {io}");
                std::process::exit(1);
            }
            std::process::exit(e.exit_code());
        }
    };
    if let Err(e) = cli::run(cli) {
        let _ = writeln!(std::io::stderr(), "error: {}", cli::message(&e));
        std::process::exit(1);
    }
}
