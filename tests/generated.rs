//! The committed completions and man pages match what the command tree generates.
//! Run with `KONG_BLESS=1` to rewrite them.

use std::path::Path;

fn check(path: &Path, want: &[u8], stale: &mut Vec<String>) {
    if std::env::var_os("KONG_BLESS").is_some() {
        std::fs::write(path, want).expect("write generated file");
        return;
    }
    if std::fs::read(path).ok().as_deref() != Some(want) {
        stale.push(path.display().to_string());
    }
}

#[test]
fn generated_completions_and_man_pages_are_fresh() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut stale = Vec::new();
    for (shell, file) in kong::cli::generate::SHELLS {
        check(
            &root.join("completions").join(file),
            &kong::cli::generate::completion(*shell),
            &mut stale,
        );
    }
    for (name, page) in kong::cli::generate::man_pages().expect("render man pages") {
        check(&root.join("man").join(name), &page, &mut stale);
    }
    assert!(
        stale.is_empty(),
        "stale generated files (regenerate with `KONG_BLESS=1 cargo test generated`): {stale:?}"
    );
}
