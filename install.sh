#!/bin/sh
# Installs the kong binary, its man pages and shell completions. No network access.
#
#   cargo build --release && sudo ./install.sh                 # into /usr/local
#   ./install.sh --prefix "$HOME/.local"                        # without privileges
#   ./install.sh --bin path/to/kong --destdir /tmp/pkgroot      # for packaging
set -eu

prefix=/usr/local
destdir=
here=$(cd "$(dirname "$0")" && pwd)
bin="$here/target/release/kong"

usage() {
    echo "usage: $0 [--prefix DIR] [--destdir DIR] [--bin PATH]" >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) [ $# -ge 2 ] || usage; prefix=$2; shift 2 ;;
        --destdir) [ $# -ge 2 ] || usage; destdir=$2; shift 2 ;;
        --bin) [ $# -ge 2 ] || usage; bin=$2; shift 2 ;;
        -h|--help) usage ;;
        *) echo "unknown option: $1" >&2; usage ;;
    esac
done

if [ ! -x "$bin" ]; then
    echo "error: no kong binary at $bin; build it first with: cargo build --release" >&2
    exit 1
fi

root="$destdir$prefix"
install -d "$root/bin" "$root/share/man/man1" \
    "$root/share/bash-completion/completions" \
    "$root/share/zsh/site-functions" \
    "$root/share/fish/vendor_completions.d"
install -m 0755 "$bin" "$root/bin/kong"
for page in "$here"/man/*.1; do
    install -m 0644 "$page" "$root/share/man/man1/"
done
install -m 0644 "$here/completions/kong.bash" "$root/share/bash-completion/completions/kong"
install -m 0644 "$here/completions/_kong" "$root/share/zsh/site-functions/_kong"
install -m 0644 "$here/completions/kong.fish" "$root/share/fish/vendor_completions.d/kong.fish"

echo "installed kong to $root/bin/kong"
