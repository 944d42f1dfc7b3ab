#!/usr/bin/env bash
# CPU cost of active health checks (issue 7): one upstream with T targets (default 1,000), each
# probed with an HTTP GET every INTERVAL seconds (default 1), against T tiny HTTP responders on
# 127.0.0.1 (one Python asyncio process, one port each). The node runs DB-less; its CPU time
# (utime + stime from /proc/<pid>/stat) is read over SECONDS_MEASURED seconds (default 30) after
# a warm-up, with no proxy traffic, so everything it spends is the checks (plus an idle baseline
# measured the same way with the checks off, reported alongside).
# The responders keep connections alive as HTTP/1.1 servers do (KEEPALIVE=0: they answer with
# `Connection: close`, so every probe opens and closes a connection).
#
# Usage: bench/healthchecks.sh                      (uses target/debug/kong; build it first)
#        KONG_BIN=target/release/kong bench/healthchecks.sh
# Prints: cores used with checks on and off, and CPU microseconds per probe.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
KONG_BIN=${KONG_BIN:-$root/target/debug/kong}
targets=${T:-1000}
interval=${INTERVAL:-1}
measured=${SECONDS_MEASURED:-30}
keepalive=${KEEPALIVE:-1}
ulimit -n 8192 || true

log() { echo "healthchecks.sh: $*" >&2; }

work=$(mktemp -d)
responder_pid=""
cleanup() {
    "$KONG_BIN" stop -p "$work/prefix" >/dev/null 2>&1 || true
    [ -n "$responder_pid" ] && kill "$responder_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# T responders on consecutive ports from a free base; prints the base port once listening.
python3 - "$targets" "$keepalive" >"$work/base" <<'PY' &
import asyncio, socket, sys
n = int(sys.argv[1])
keepalive = sys.argv[2] == "1"
async def handle(reader, writer):
    try:
        while True:
            await reader.readuntil(b"\r\n\r\n")
            if keepalive:
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
            else:
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                await writer.drain()
                break
    except Exception:
        pass
    writer.close()
async def main():
    for attempt in range(50):
        s = socket.socket(); s.bind(("127.0.0.1", 0)); base = s.getsockname()[1]; s.close()
        base = 20000 + (base % 20000)
        servers = []
        try:
            for i in range(n):
                servers.append(await asyncio.start_server(handle, "127.0.0.1", base + i))
        except OSError:
            for srv in servers:
                srv.close()
            continue
        print(base, flush=True)
        await asyncio.Event().wait()
asyncio.run(main())
PY
responder_pid=$!
for _ in $(seq 100); do [ -s "$work/base" ] && break; sleep 0.1; done
base=$(head -1 "$work/base")
log "$targets responders from port $base"

run() { # run CHECKS_ON(1|0) → prints cores used
    local on=$1 healthy=0 unhealthy=0
    [ "$on" = 1 ] && healthy=$interval && unhealthy=$interval
    {
        echo '_format_version: "3.0"'
        echo 'upstreams:'
        echo '- name: checked.bench'
        echo '  healthchecks:'
        echo '    active:'
        echo '      concurrency: 10'
        echo "      healthy: {interval: $healthy, successes: 1}"
        echo "      unhealthy: {interval: $unhealthy, tcp_failures: 1, http_failures: 1}"
        echo '  targets:'
        for i in $(seq 0 $((targets - 1))); do
            echo "  - target: 127.0.0.1:$((base + i))"
        done
    } >"$work/kong.yml"
    cat >"$work/kong.conf" <<EOF
prefix = $work/prefix
database = off
declarative_config = $work/kong.yml
proxy_listen = 127.0.0.1:$(free_port)
admin_listen = 127.0.0.1:$(free_port)
status_listen = off
proxy_access_log = off
admin_access_log = off
log_level = error
EOF
    "$KONG_BIN" start -c "$work/kong.conf" >/dev/null
    local pid
    pid=$(cat "$work/prefix/pids/nginx.pid" 2>/dev/null || cat "$work/prefix/kong.pid")
    sleep 5
    local hz t0 t1
    hz=$(getconf CLK_TCK)
    t0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    sleep "$measured"
    t1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    "$KONG_BIN" stop -p "$work/prefix" >/dev/null
    awk -v a="$t0" -v b="$t1" -v hz="$hz" -v s="$measured" 'BEGIN { printf "%.4f\n", (b - a) / hz / s }'
}

on=$(run 1)
off=$(run 0)
probes_per_s=$(awk -v t="$targets" -v i="$interval" 'BEGIN { print t / i }')
per_probe=$(awk -v on="$on" -v off="$off" -v p="$probes_per_s" 'BEGIN { printf "%.1f", (on - off) / p * 1e6 }')
echo "targets: $targets, probe interval: ${interval}s ($probes_per_s probes/s), responders keep-alive: $keepalive, measured ${measured}s"
echo "cores used, checks on: $on; checks off (idle baseline): $off"
echo "CPU per probe: ${per_probe} µs"
