#!/usr/bin/env bash
# User-space instructions per proxied request, counted by valgrind's callgrind: a figure that
# does not move with the host's load, for comparing two builds (or a route with and without
# plugins) when the timed benchmarks are too noisy to tell a few percent apart.
#
# Starts two DB-less nodes on 127.0.0.1 (as bench/allocs.sh does):
#   - an upstream node answering 200 "ok" itself (a global request-termination plugin);
#   - the node under test, in the foreground under callgrind with counting off, proxying one
#     route to it (optionally with PLUGINS on the route, and a consumer with a key-auth key),
# warms up with 300 requests over one keep-alive connection, counts N more, and divides.
# Kernel time is not in the figure (callgrind counts the process's own instructions).
#
# Usage: bench/instructions.sh                 (builds target/release/kong)
#        KONG_BIN=path/to/kong bench/instructions.sh
# Environment: N [3000] requests; PLUGINS: a JSON array of plugin objects put on the route;
#   KEY: when set, a consumer with this key-auth key is declared and every request sends it in
#   an `apikey` header. Example (the benchmark's plugins scenario):
#   KEY=bench-key PLUGINS='[{"name":"key-auth"},{"name":"rate-limiting","config":{"second":1000000000,"policy":"local"}},{"name":"prometheus"}]'
# Prints one line: "instructions per request: X".
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
n=${N:-3000}
plugins=${PLUGINS:-[]}
key=${KEY:-}

log() { echo "instructions.sh: $*" >&2; }

if ! command -v valgrind >/dev/null || ! command -v callgrind_control >/dev/null; then
    log "installing valgrind..."
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >&2
fi
if [ -z "${KONG_BIN:-}" ]; then
    log "building kong (release)..."
    cargo build --release -j "${BUILD_JOBS:-1}" --bin kong --manifest-path "$root/Cargo.toml" >&2
    KONG_BIN="$root/target/release/kong"
fi

work=$(mktemp -d)
# shellcheck source=lib/nodes.sh
. "$here/lib/nodes.sh"
measured=""
cleanup() {
    [ -n "$measured" ] && kill "$measured" 2>/dev/null && wait "$measured" 2>/dev/null || true
    stop_nodes
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

up_port=$(free_port) up_admin=$(free_port)
"$KONG_BIN" start -c "$(node_conf upstream "$up_port" "$up_admin" "$ANSWER_YAML" "nginx_worker_processes = 1")" >/dev/null

px_port=$(free_port) px_admin=$(free_port)
yaml=$(python3 - "$plugins" "$key" "$up_port" <<'EOF'
import json, sys
plugins, key, port = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
doc = {"_format_version": "3.0",
       "services": [{"name": "s", "url": f"http://127.0.0.1:{port}",
                     "routes": [{"name": "r", "paths": ["/"], "plugins": plugins}]}]}
if key:
    doc["consumers"] = [{"username": "bench", "keyauth_credentials": [{"key": key}]}]
print(json.dumps(doc))
EOF
)
px_conf=$(node_conf proxy "$px_port" "$px_admin" "$yaml" "nginx_worker_processes = 1")
echo "nginx_daemon = off" >>"$px_conf"
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$work/callgrind.%p" \
    "$KONG_BIN" start -c "$px_conf" >"$work/valgrind.log" 2>&1 &
measured=$!

drive() { # COUNT [wait]: requests over one keep-alive connection; "wait" first waits for the node
    python3 - "$px_port" "$1" "$key" "${2:-}" <<'EOF'
import http.client, sys, time
port, count, key, wait = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
headers = {"Host": "bench.test"}
if key:
    headers["apikey"] = key
c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
for attempt in range(600 if wait else 0):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        c.request("GET", "/bench", headers=headers)
        c.getresponse().read()
        break
    except OSError:
        time.sleep(0.1)
else:
    if wait:
        sys.exit("instructions.sh: the node under valgrind never answered")
for _ in range(count):
    c.request("GET", "/bench", headers=headers)
    r = c.getresponse()
    body = r.read()
    if r.status != 200 or body != b"ok":
        sys.exit(f"instructions.sh: unexpected answer {r.status} {body[:200]!r}")
EOF
}

drive 300 wait
callgrind_control -i on "$measured" >/dev/null 2>&1
drive "$n"
callgrind_control -i off "$measured" >/dev/null 2>&1
callgrind_control -d "$measured" >/dev/null 2>&1
sleep 1
total=$(cat "$work"/callgrind.* | awk '/^totals:/ {s += $2} END {print s + 0}')
python3 -c 'import sys; print(f"instructions per request: {int(sys.argv[1]) / int(sys.argv[2]):,.0f}  ({sys.argv[2]} requests, one keep-alive connection)")' "$total" "$n"
