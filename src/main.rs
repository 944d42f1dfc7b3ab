//! The `kong` binary: parses the command line, runs it, owns the exit code.

fn main() {
    let code = match kong::cli::run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("Error: {e:#}");
            eprintln!("\n  Run with --v (verbose) or --vv (debug) for more details");
            1
        }
    };
    std::process::exit(code);
}
