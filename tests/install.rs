//! `install.sh` installs the binary, man pages and completions into a staging root.

use std::process::Command;

#[test]
fn install_script_installs_everything_into_a_destdir() {
    let stage = tempfile::tempdir().expect("tmp");
    let out = Command::new("sh")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/install.sh"))
        .args(["--prefix", "/usr", "--destdir"])
        .arg(stage.path())
        .args(["--bin", crate::support::kong::bin()])
        .output()
        .expect("run install.sh");
    assert!(out.status.success(), "{}", crate::support::kong::text(&out));
    let root = stage.path().join("usr");
    for file in [
        "bin/kong",
        "share/man/man1/kong.1",
        "share/man/man1/kong-start.1",
        "share/bash-completion/completions/kong",
        "share/zsh/site-functions/_kong",
        "share/fish/vendor_completions.d/kong.fish",
    ] {
        assert!(root.join(file).is_file(), "{file} installed");
    }
    let version = Command::new(root.join("bin/kong"))
        .arg("version")
        .output()
        .expect("run");
    assert_eq!(String::from_utf8_lossy(&version.stdout), "3.10.0\n");
}
