//! Shell completions and man pages, generated from the one clap command tree.
//!
//! The committed copies under `completions/` and `man/` are checked fresh by a test; regenerate
//! them with `KONG_BLESS=1 cargo test generated`.

use clap_complete::Shell;

/// Shells that get a completion script, with the script's file name.
pub const SHELLS: &[(Shell, &str)] = &[
    (Shell::Bash, "kong.bash"),
    (Shell::Zsh, "_kong"),
    (Shell::Fish, "kong.fish"),
    (Shell::Elvish, "kong.elv"),
    (Shell::PowerShell, "_kong.ps1"),
];

/// The completion script for `shell`.
pub fn completion(shell: Shell) -> Vec<u8> {
    let mut cmd = super::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "kong", &mut out);
    out
}

/// Man pages: `kong.1` and one `kong-<command>.1` per visible subcommand.
pub fn man_pages() -> std::io::Result<Vec<(String, Vec<u8>)>> {
    let cmd = super::command();
    let mut pages = Vec::new();
    let mut root = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut root)?;
    pages.push(("kong.1".to_string(), root));
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("kong-{}", sub.get_name());
        let mut page = Vec::new();
        clap_mangen::Man::new(sub.clone().name(name.clone())).render(&mut page)?;
        pages.push((format!("{name}.1"), page));
    }
    Ok(pages)
}
