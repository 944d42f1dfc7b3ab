#!/usr/bin/env bash
# Heap allocations per proxied request (issue "Proxy data path": "allocations per request
# measured").
#
# Builds kong with the `count-allocations` feature (the same allocator, counting every
# allocation; `/status` reports the total), starts two DB-less nodes on 127.0.0.1:
#   - an upstream node answering 200 "ok" itself (a global request-termination plugin);
#   - the node under test, proxying one route to it (optionally with PLUGINS on the route),
# sends N requests over one keep-alive connection, and divides the allocations the node under
# test made by N (the two `/status` reads around the run are measured and subtracted).
#
# Usage: bench/allocs.sh                  (builds target/allocs/release/kong)
#        KONG_BIN=path/to/kong bench/allocs.sh   (a binary built with --features count-allocations)
# Environment: N [2000] requests; PLUGINS: a JSON array of plugin objects put on the route, e.g.
#   PLUGINS='[{"name":"request-termination","config":{"status_code":200}}]'.
# Prints one line: "allocations per request: X".
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
n=${N:-2000}
plugins=${PLUGINS:-[]}

log() { echo "allocs.sh: $*" >&2; }

if [ -z "${KONG_BIN:-}" ]; then
    log "building kong with --features count-allocations (release)..."
    cargo build --release -j "${BUILD_JOBS:-1}" --features count-allocations \
        --target-dir "$root/target/allocs" --manifest-path "$root/Cargo.toml" >&2
    KONG_BIN="$root/target/allocs/release/kong"
fi

work=$(mktemp -d)
# shellcheck source=lib/nodes.sh
. "$here/lib/nodes.sh"
cleanup() {
    stop_nodes
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

# node NAME PROXY_PORT ADMIN_PORT YAML: writes and starts a node
node() { "$KONG_BIN" start -c "$(node_conf "$@")" >/dev/null; }

up_port=$(free_port) up_admin=$(free_port)
node upstream "$up_port" "$up_admin" "$ANSWER_YAML"

px_port=$(free_port) px_admin=$(free_port)
route_plugins=$(python3 -c 'import json,sys; print(json.dumps(json.loads(sys.argv[1])))' "$plugins")
node proxy "$px_port" "$px_admin" "{\"_format_version\": \"3.0\", \"services\": [{\"name\": \"s\", \"url\": \"http://127.0.0.1:$up_port\", \"routes\": [{\"name\": \"r\", \"paths\": [\"/\"], \"plugins\": $route_plugins}]}]}"

python3 - "$px_port" "$px_admin" "$n" <<'EOF'
import http.client, json, sys
proxy_port, admin_port, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
admin = http.client.HTTPConnection("127.0.0.1", admin_port)
def allocations():
    admin.request("GET", "/status")
    body = json.loads(admin.getresponse().read())
    if "allocations" not in body:
        sys.exit("allocs.sh: this kong binary does not count allocations (build it with --features count-allocations)")
    return body["allocations"]
proxy = http.client.HTTPConnection("127.0.0.1", proxy_port)
def run(count):
    for _ in range(count):
        proxy.request("GET", "/bench", headers={"Host": "bench.test"})
        r = proxy.getresponse()
        body = r.read()
        if r.status != 200 or body != b"ok":
            sys.exit(f"allocs.sh: unexpected answer {r.status} {body[:200]!r}")
run(200)  # warm up: connections pooled, caches filled
a = allocations(); b = allocations(); overhead = b - a
start = allocations()
run(n)
end = allocations()
per = (end - start - overhead) / n
print(f"allocations per request: {per:.1f}  ({n} requests, one keep-alive connection)")
EOF
