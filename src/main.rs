//! The `kong` binary: parses the command line, runs it, owns the exit code.

/// mimalloc instead of the system allocator: a node replaces its whole configuration at once
/// (`POST /config`, reloads of large files) on whichever worker thread runs the request, and
/// glibc's per-thread arenas kept such bursts as resident memory that later loads did not
/// reuse (RSS grew by the configuration's size with every load). mimalloc reuses and returns
/// freed pages across threads. (Called as `allocator` says, not through its aligned API.)
#[cfg(not(feature = "count-allocations"))]
#[global_allocator]
static ALLOCATOR: kong::allocator::Mimalloc = kong::allocator::Mimalloc;

/// With `count-allocations`, the same allocator, counting every allocation for `/status`.
#[cfg(feature = "count-allocations")]
#[global_allocator]
static ALLOCATOR: kong::allocations::Counting<kong::allocator::Mimalloc> =
    kong::allocations::Counting(kong::allocator::Mimalloc);

fn main() {
    let code = match kong::cli::run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("Error: {}", chain(&e));
            eprintln!("\n  Run with --v (verbose) or --vv (debug) for more details");
            1
        }
    };
    std::process::exit(code);
}

/// The error and its causes, joined by `: `, leaving out a cause whose text the message
/// already quotes (many errors print their source in their own message).
fn chain(e: &anyhow::Error) -> String {
    let mut message = e.to_string();
    for cause in e.chain().skip(1) {
        let cause = cause.to_string();
        if !message.contains(&cause) {
            message.push_str(": ");
            message.push_str(&cause);
        }
    }
    message
}
