#!/usr/bin/env bash
# Proxy benchmark (issue "Benchmarks", items 1, 3 and 5): kong against nginx against the upstream
# alone, on this machine, in one run.
#
# What it starts, all on 127.0.0.1 and all stopped again on exit (INT and TERM too):
#   - upstream: nginx, one worker, answering from memory (a 13-byte body) or from two small
#     files (1 KB, 64 KB) the page cache keeps;
#   - nginx as the reference reverse proxy: one worker, an upstream{} pool with keepalive,
#     HTTP/1.1 and "Connection: ''" to the upstream, no access log, plain and TLS listeners;
#   - kong: DB-less nodes (`database = off`, a kong.yml written here), `proxy_access_log = off`,
#     `nginx_worker_processes = 1` (a one-thread runtime, like nginx's one worker), plain and TLS
#     listeners with the same self-signed certificate as nginx. One node holds 1 route, another
#     ROUTES routes (the request hits one in the middle).
# Pinning (taskset, with 2+ CPUs): wrk and the upstream share CPU 0, the proxy under test has
# CPU 1 to itself. When the proxy's CPU column is well below 100%, CPU 0 was the bottleneck and
# the CPU time per request is the figure to compare, not requests/s.
#
# Each scenario drives its targets with wrk (1 thread, CONNECTIONS connections, --latency) in
# alternation (forwards in odd rounds, backwards in even ones), ROUNDS times DURATION seconds,
# and reports per target the median over the rounds of: requests/s, p50 and p99 latency, and
# the CPU time (utime + stime of every thread of every process of the target, from
# /proc/<pid>/stat) per request. For "direct" that is the upstream's own CPU.
# Scenarios: bare (13-byte body), 1 route vs ROUTES routes, 1 KB and 64 KB bodies, HTTPS from the
# client to the proxy (upstream plain), paced (bare, each connection pausing PACE_MS between
# requests: the latency below saturation, which a closed loop at full speed hides behind
# queueing), and a hook for a plugins scenario, skipped until the node has key-auth,
# rate-limiting and prometheus.
#
# Memory (item 3), on nodes with the default runtime (a worker thread per CPU) and the default
# SQLite datastore: RSS idle, with MEM_ROUTES routes, and after CHURN Admin API writes (PATCH
# of a route's paths, each one rebuilding the router), with the growth.
#
# Output: progress on stderr; the results as markdown tables on stdout (padded, so readable as
# they are), also written to OUT when set, to paste into bench/RESULTS.md.
#
# Usage: bench/proxy.sh            (the real run: ~8 minutes of load, plus a release build)
#        SMOKE=1 KONG_BIN=target/debug/kong bench/proxy.sh     (CI: seconds; no figures to keep)
# Environment (defaults in brackets; SMOKE=1 changes the defaults to the ones after the slash):
#   ROUNDS [3/1]  DURATION seconds [10/1]  WARMUP seconds per target [2/0]  CONNECTIONS [50]
#   PACE_MS [10]: the paced scenario's mean wait between an answer and the next request
#   ROUTES [10000/200]  MEM_ROUTES [5000/200]  CHURN [1000/20]
#   KONG_BIN: use this kong binary instead of building target/release/kong (cargo -j BUILD_JOBS [1])
#   OUT: also write the markdown here.
# It fails (non-zero) only when the harness breaks: something does not start, a target answers
# anything but 200 with the expected body, or wrk sees a non-2xx answer. It asserts no timing.
# Needs root to install nginx and wrk (apt-get) when they are missing.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")

if [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 0
fi

smoke=${SMOKE:-0}
if [ "$smoke" = 1 ]; then d_rounds=1 d_duration=1 d_warmup=0 d_routes=200 d_mem_routes=200 d_churn=20
else d_rounds=3 d_duration=10 d_warmup=2 d_routes=10000 d_mem_routes=5000 d_churn=1000; fi
rounds=${ROUNDS:-$d_rounds}
duration=${DURATION:-$d_duration}
warmup=${WARMUP:-$d_warmup}
connections=${CONNECTIONS:-50}
pace_ms=${PACE_MS:-10}
routes=${ROUTES:-$d_routes}
mem_routes=${MEM_ROUTES:-$d_mem_routes}
churn=${CHURN:-$d_churn}

load_start=$(cut -d' ' -f1-3 /proc/loadavg) # other work on the machine skews every figure
log() { echo "proxy.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

# --- Tools --------------------------------------------------------------------------------------

missing=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v jq >/dev/null 2>&1 || missing+=(jq)
command -v taskset >/dev/null 2>&1 || missing+=(util-linux)
command -v ss >/dev/null 2>&1 || missing+=(iproute2)
if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}..."
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)

if [ -n "${KONG_BIN:-}" ]; then
    case $KONG_BIN in /*) kong=$KONG_BIN ;; *) kong=$root/$KONG_BIN ;; esac
    [ -x "$kong" ] || die "KONG_BIN=$KONG_BIN is not an executable"
else
    log "building target/release/kong (cargo build --release -j ${BUILD_JOBS:-1})..."
    (cd "$root" && cargo build --release --quiet -j "${BUILD_JOBS:-1}" --bin kong)
    kong=$root/target/release/kong
fi

# CPUs: wrk and the upstream on one, the proxy on another (nothing pinned on a single CPU).
if [ "$(nproc)" -ge 2 ]; then
    load_cpu=(taskset -c 0)
    proxy_cpu=(taskset -c 1)
else
    log "one CPU only: nothing is pinned, the figures mix load generator and proxy"
    load_cpu=()
    proxy_cpu=()
fi
clk_tck=$(getconf CLK_TCK)

# --- Work directory and cleanup -----------------------------------------------------------------

work=$(mktemp -d /tmp/kong-bench-proxy.XXXXXX)
chmod 755 "$work" # nginx workers run as another user and read the files in here
nginx_pids=()     # pid files of the nginx masters started here
kong_prefixes=()  # prefixes of the kong nodes started here

# running PID: the process exists and is not a zombie (an exited daemon stays one until init
# reaps it, which can take a while).
running() { [ -e "/proc/$1/stat" ] && [ "$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)" != Z ]; }
stop_kong() {
    local prefix=$1 pid
    [ -f "$prefix/pids/nginx.pid" ] || return 0
    pid=$(cat "$prefix/pids/nginx.pid")
    "$kong" stop -p "$prefix" >/dev/null 2>&1 && return 0
    # Killed only if that pid is still the node serving this prefix.
    if grep -qF "$prefix" "/proc/$pid/cmdline" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
}
cleanup() {
    local status=$? f pid i
    trap - EXIT INT TERM
    set +e # stop everything even if one stop fails
    for f in "${kong_prefixes[@]}"; do stop_kong "$f"; done
    for f in "${nginx_pids[@]}"; do
        [ -f "$f" ] || continue
        pid=$(cat "$f")
        kill -TERM "$pid" 2>/dev/null || continue
        for i in $(seq 50); do running "$pid" || break; sleep 0.1; done
        running "$pid" && kill -KILL "$pid" 2>/dev/null
    done
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# free_port VAR: sets VAR to a port no socket uses and not handed out before, below the kernel's
# ephemeral range (so no outgoing connection takes it before its listener binds it).
taken=" "
port_low=10000
port_high=$(awk '{ print $1 - 1 }' /proc/sys/net/ipv4/ip_local_port_range)
[ "$port_high" -gt $((port_low + 1000)) ] || port_low=1024
free_port() {
    local p
    while :; do
        p=$((port_low + RANDOM % (port_high - port_low)))
        case $taken in *" $p "*) continue ;; esac
        ss -Htan "sport = :$p" | grep -q . && continue
        taken="$taken$p "
        printf -v "$1" '%s' "$p"
        return
    done
}

# wait_200 URL [SECONDS]: polls until URL answers 200.
wait_200() {
    local url=$1 deadline=$((SECONDS + ${2:-30}))
    until [ "$(curl -sk -o /dev/null -w '%{http_code}' "$url" 2>/dev/null)" = 200 ]; do
        [ $SECONDS -lt "$deadline" ] || return 1
        sleep 0.05
    done
}

# --- Upstream, nginx proxy, certificate ---------------------------------------------------------

mkdir -p "$work/www" "$work/up" "$work/ngx"
head -c 1024 /dev/zero | tr '\0' 'a' >"$work/www/1k"
head -c 65536 /dev/zero | tr '\0' 'b' >"$work/www/64k"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost \
    -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
chmod 644 "$work/key.pem"

free_port up_port
free_port ngx_port
free_port ngx_tls

# Shared by both nginx: one worker, no logs, clients kept alive as long as they like (wrk would
# otherwise reconnect every 1,000 requests, and over TLS handshake again).
nginx_main() {
    cat <<EOF
worker_processes 1;
daemon on;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections 4096; }
EOF
}
nginx_http() {
    cat <<EOF
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    client_body_temp_path $1/body;
    proxy_temp_path $1/proxy;
    fastcgi_temp_path $1/fastcgi;
    uwsgi_temp_path $1/uwsgi;
    scgi_temp_path $1/scgi;
EOF
}

{
    nginx_main "$work/up"
    echo "http {"
    nginx_http "$work/up"
    cat <<EOF
    sendfile on;
    open_file_cache max=16;
    server {
        listen 127.0.0.1:$up_port backlog=4096;
        location = /tiny { default_type text/plain; return 200 "hello, world\n"; }
        location = /1k { default_type text/plain; alias $work/www/1k; }
        location = /64k { default_type text/plain; alias $work/www/64k; }
    }
}
EOF
} >"$work/up/nginx.conf"

# The reference proxy. /r0/ is stripped as kong's route does (strip_path); 128 KB of proxy
# buffers keep a 64 KB answer in memory (the default 32 KB would spill it to a temp file).
{
    nginx_main "$work/ngx"
    echo "http {"
    nginx_http "$work/ngx"
    cat <<EOF
    upstream bench_upstream {
        server 127.0.0.1:$up_port;
        keepalive 64;
        keepalive_requests 10000;
        keepalive_timeout 60s;
    }
    server {
        listen 127.0.0.1:$ngx_port backlog=4096;
        listen 127.0.0.1:$ngx_tls ssl backlog=4096;
        ssl_certificate $work/cert.pem;
        ssl_certificate_key $work/key.pem;
        location /r0/ {
            proxy_pass http://bench_upstream/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffers 8 16k;
        }
    }
}
EOF
} >"$work/ngx/nginx.conf"

start_nginx() { # DIR CPU-PREFIX...
    local dir=$1; shift
    "$nginx_bin" -t -q -c "$dir/nginx.conf" -e "$dir/error.log" ||
        die "nginx config $dir/nginx.conf is invalid"
    nginx_pids+=("$dir/nginx.pid")
    "$@" "$nginx_bin" -c "$dir/nginx.conf" -e "$dir/error.log" ||
        { cat "$dir/error.log" >&2 || true; die "nginx ($dir) did not start"; }
}
log "starting the upstream (127.0.0.1:$up_port) and nginx (:$ngx_port, TLS :$ngx_tls)..."
start_nginx "$work/up" "${load_cpu[@]}"
start_nginx "$work/ngx" "${proxy_cpu[@]}"
wait_200 "http://127.0.0.1:$up_port/tiny" || die "the upstream does not answer"
wait_200 "http://127.0.0.1:$ngx_port/r0/tiny" || die "nginx does not proxy"

# --- kong ---------------------------------------------------------------------------------------

# kong_yml N: one service (the upstream), N routes /r0 ... /r<N-1>, each stripping its prefix.
kong_yml() {
    awk -v n="$1" -v port="$up_port" 'BEGIN {
        print "_format_version: \"3.0\"";
        print "services:";
        printf "  - name: upstream\n    url: http://127.0.0.1:%d\n    routes:\n", port;
        for (i = 0; i < n; i++) printf "      - name: route-%d\n        paths: [\"/r%d/\"]\n", i, i;
    }'
}

# start_kong NAME CONF-LINES [pin]: a node on $work/NAME with these kong.conf lines, with every
# thread on the proxy CPU if "pin"; sets its ports in kong_proxy[NAME], kong_tls[NAME],
# kong_admin[NAME] and its pid in kong_pid[NAME].
declare -A kong_proxy kong_tls kong_admin kong_pid
start_kong() {
    local name=$1 conf=$2 dir=$work/$1 pid cpu=()
    [ "${3:-}" = pin ] && cpu=("${proxy_cpu[@]}")
    mkdir -p "$dir"
    free_port "kong_proxy[$name]"
    free_port "kong_tls[$name]"
    free_port "kong_admin[$name]"
    cat >"$dir/kong.conf" <<EOF
proxy_listen = 127.0.0.1:${kong_proxy[$name]} backlog=4096, 127.0.0.1:${kong_tls[$name]} ssl backlog=4096
admin_listen = 127.0.0.1:${kong_admin[$name]}
proxy_access_log = off
admin_access_log = off
ssl_cert = $work/cert.pem
ssl_cert_key = $work/key.pem
$conf
EOF
    kong_prefixes+=("$dir/prefix")
    "${cpu[@]}" "$kong" start -c "$dir/kong.conf" -p "$dir/prefix" >"$dir/start.log" 2>&1 || {
        cat "$dir/start.log" "$dir/prefix/logs/error.log" >&2 2>/dev/null || true
        die "kong ($name) did not start"
    }
    pid=$(cat "$dir/prefix/pids/nginx.pid")
    kong_pid[$name]=$pid
    # Inherited from `kong start` already; set again on every thread in case the node resets it.
    if [ ${#cpu[@]} -gt 0 ]; then taskset -a -p -c 1 "$pid" >/dev/null; fi
    wait_200 "http://127.0.0.1:${kong_admin[$name]}/status" || die "kong ($name): no Admin API"
}

# The nodes under test: DB-less, one runtime thread, pinned with every thread to the proxy CPU.
bench_conf="database = off
nginx_worker_processes = 1"
kong_yml 1 >"$work/kong-1.yml"
kong_yml "$routes" >"$work/kong-many.yml"
log "starting kong with 1 route and with $routes routes..."
start_kong k1 "$bench_conf
declarative_config = $work/kong-1.yml" pin
start_kong kmany "$bench_conf
declarative_config = $work/kong-many.yml" pin
mid=$((routes / 2))

# --- Targets ------------------------------------------------------------------------------------

# A target: "label|base URL|route prefix|pid-source". The route prefix goes before /tiny, /1k...
# pid-source names whose CPU is counted: up (upstream nginx), ngx (proxy nginx), or a kong node.
declare -A target_url target_cpu target_hdr
add_target() { target_url[$1]=$2; target_cpu[$1]=$3; target_hdr[$1]=; }
# hdr_args TARGET: curl/wrk arguments for the target's extra request header, if any.
hdr_args() { if [ -n "${target_hdr[$1]:-}" ]; then printf '%s\n' -H "${target_hdr[$1]}"; fi; }
add_target direct "http://127.0.0.1:$up_port" up
add_target nginx "http://127.0.0.1:$ngx_port/r0" ngx
add_target kong "http://127.0.0.1:${kong_proxy[k1]}/r0" k1
add_target "kong-$routes" "http://127.0.0.1:${kong_proxy[kmany]}/r$mid" kmany
add_target nginx-tls "https://127.0.0.1:$ngx_tls/r0" ngx
add_target kong-tls "https://127.0.0.1:${kong_tls[k1]}/r0" k1

# pids_of SOURCE: every process whose CPU the source is charged for (nginx: master and workers).
pids_of() {
    local master
    case $1 in
        up | ngx) master=$(cat "$work/$1/nginx.pid"); echo "$master" $(pgrep -P "$master" || true) ;;
        *) echo "${kong_pid[$1]}" ;;
    esac
}
# cpu_ticks PID...: utime + stime of every thread of these processes, in clock ticks.
cpu_ticks() {
    local p total=0
    for p in "$@"; do
        # Fields after "pid (comm) ": utime and stime are the 12th and 13th.
        total=$((total + $(sed 's/^.*) //' "/proc/$p/stat" | awk '{ print $12 + $13 }')))
    done
    echo "$total"
}

# to_us VALUE: a wrk latency (850.00us, 1.23ms, 2.00s) in microseconds.
to_us() {
    awk -v v="$1" 'BEGIN {
        if (v ~ /us$/) f = 1; else if (v ~ /ms$/) f = 1000; else if (v ~ /m$/) f = 60e6;
        else if (v ~ /s$/) f = 1e6; else f = 1;
        sub(/[a-z]+$/, "", v); printf "%.1f", v * f }'
}

# check SCENARIO TARGET PATH SIZE: one request must answer 200 with SIZE bytes.
check() {
    local out code size
    local hdr=()
    mapfile -t hdr < <(hdr_args "$2")
    out=$(curl -sk "${hdr[@]}" -o /dev/null -w '%{http_code} %{size_download}' "${target_url[$2]}$3") || true
    read -r code size <<<"$out"
    [ "$code" = 200 ] && [ "$size" = "$4" ] ||
        die "$1: ${target_url[$2]}$3 answered '$out' (expected 200 and $4 bytes)"
}

wrk_extra=() # more wrk arguments for the scenario being run
results=$work/rounds.tsv # scenario, target, round, rps, p50 µs, p99 µs, CPU µs/request, CPU %
: >"$results"

# measure SCENARIO TARGET PATH ROUND: one wrk run, one line in $results.
measure() {
    local scenario=$1 target=$2 path=$3 round=$4 out pids before after
    local url=${target_url[$target]}$path
    out=$work/wrk.out
    read -r -a pids <<<"$(pids_of "${target_cpu[$target]}")"
    before=$(cpu_ticks "${pids[@]}")
    local hdr=()
    mapfile -t hdr < <(hdr_args "$target")
    "${load_cpu[@]}" wrk -t1 -c"$connections" -d"${duration}s" --latency "${hdr[@]}" "${wrk_extra[@]}" "$url" >"$out" 2>&1 ||
        { cat "$out" >&2; die "$scenario/$target: wrk failed"; }
    after=$(cpu_ticks "${pids[@]}")
    if grep -q 'Non-2xx' "$out"; then cat "$out" >&2; die "$scenario/$target: non-2xx answers"; fi
    local rps requests p50 p99 errors
    rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
    requests=$(awk '/ requests in / { print $1 }' "$out")
    p50=$(to_us "$(awk '$1 == "50%" { print $2 }' "$out")")
    p99=$(to_us "$(awk '$1 == "99%" { print $2 }' "$out")")
    errors=$(grep 'Socket errors' "$out" || true)
    [ -n "$rps" ] && [ "${requests:-0}" -gt 0 ] || { cat "$out" >&2; die "$scenario/$target: no requests"; }
    [ -z "$errors" ] || log "$scenario/$target round $round: $errors"
    awk -v s="$scenario" -v t="$target" -v r="$round" -v rps="$rps" -v p50="$p50" -v p99="$p99" \
        -v ticks=$((after - before)) -v hz="$clk_tck" -v n="$requests" -v d="$duration" 'BEGIN {
        printf "%s\t%s\t%s\t%s\t%s\t%s\t%.2f\t%.0f\n", s, t, r, rps, p50, p99,
            ticks / hz / n * 1e6, ticks / hz / d * 100 }' >>"$results"
    log "$(printf '%-8s %-12s round %s: %10.0f req/s  p50 %7.0f us  p99 %7.0f us' \
        "$scenario" "$target" "$round" "$rps" "$p50" "$p99")"
}

# scenario NAME PATH SIZE TARGET...: checks every target, warms each up, then ROUNDS rounds.
scenario() {
    local name=$1 path=$2 size=$3 t r; shift 3
    for t in "$@"; do check "$name" "$t" "$path" "$size"; done
    if [ "$warmup" -gt 0 ]; then
        for t in "$@"; do
            local hdr=()
            mapfile -t hdr < <(hdr_args "$t")
            "${load_cpu[@]}" wrk -t1 -c"$connections" -d"${warmup}s" "${hdr[@]}" "${wrk_extra[@]}" "${target_url[$t]}$path" >/dev/null 2>&1
        done
    fi
    # Even rounds go through the targets backwards (A B, B A, ...): on a host whose speed drifts,
    # a fixed order favours whichever target comes first.
    local order=("$@") reversed=() i
    for ((i = $# - 1; i >= 0; i--)); do reversed+=("${order[$i]}"); done
    for r in $(seq "$rounds"); do
        if ((r % 2 == 0)); then
            for t in "${reversed[@]}"; do measure "$name" "$t" "$path" "$r"; done
        else
            for t in "${order[@]}"; do measure "$name" "$t" "$path" "$r"; done
        fi
    done
}

# --- Scenarios ----------------------------------------------------------------------------------

log "load: $rounds round(s) x ${duration}s per target, $connections connections, warm-up ${warmup}s"
scenario bare /tiny 13 direct nginx kong "kong-$routes"
scenario 1KB /1k 1024 direct nginx kong
scenario 64KB /64k 65536 direct nginx kong
scenario HTTPS /tiny 13 nginx-tls kong-tls
# Paced: each connection waits PACE_MS on average (uniformly 0 to twice that, so the connections
# do not fire together) between an answer and its next request (wrk's delay()), so the proxies
# run well below saturation and the latency is their own, not queueing.
echo "function delay() return math.random(0, $((2 * pace_ms))) end" >"$work/paced.lua"
wrk_extra=(-s "$work/paced.lua")
scenario paced /tiny 13 direct nginx kong
wrk_extra=()

# Plugins: key-auth + rate-limiting (local) + prometheus on the route, a consumer sending its
# key; compared with kong bare (nginx has no equivalent).
plugins=$(curl -s "http://127.0.0.1:${kong_admin[k1]}/" |
    jq -r '.plugins.available_on_server | [has("key-auth"), has("rate-limiting"), has("prometheus")] | all')
if [ "$plugins" = true ]; then
    cat >"$work/kong-plugins.yml" <<EOF
_format_version: "3.0"
services:
  - name: upstream
    url: http://127.0.0.1:$up_port
    routes:
      - name: route-0
        paths: ["/r0/"]
        plugins:
          - name: key-auth
          - name: rate-limiting
            config: {second: 1000000000, policy: local}
          - name: prometheus
consumers:
  - username: bench
    keyauth_credentials:
      - key: bench-key
EOF
    start_kong kplug "$bench_conf
declarative_config = $work/kong-plugins.yml" pin
    add_target kong-plugins "http://127.0.0.1:${kong_proxy[kplug]}/r0" kplug
    target_hdr[kong-plugins]="apikey: bench-key"
    scenario plugins /tiny 13 kong kong-plugins
else
    log "plugins scenario: skipped (the node has no key-auth, rate-limiting and prometheus)"
fi

threads_bench=$(ls "/proc/${kong_pid[k1]}/task" | wc -l)

# --- Memory -------------------------------------------------------------------------------------

# The node a user gets (SQLite, a worker thread per CPU), not pinned; RSS in MB after a settle.
rss_mb() { awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
settle() { sleep "$([ "$smoke" = 1 ] && echo 0.2 || echo 2)"; }

log "memory: an idle node..."
start_kong midle ""
settle
rss_idle=$(rss_mb "${kong_pid[midle]}")
threads_idle=$(ls "/proc/${kong_pid[midle]}/task" | wc -l)
stop_kong "$work/midle/prefix"

log "memory: a node with $mem_routes routes, then $churn Admin API changes..."
mkdir -p "$work/mroutes/prefix"
kong_yml "$mem_routes" >"$work/mem.yml"
KONG_PREFIX="$work/mroutes/prefix" "$kong" config db_import "$work/mem.yml" >"$work/import.log" 2>&1 ||
    { cat "$work/import.log" >&2; die "db_import of $mem_routes routes failed"; }
start_kong mroutes ""
mpid=${kong_pid[mroutes]}
wait_200 "http://127.0.0.1:${kong_proxy[mroutes]}/r$((mem_routes - 1))/tiny" || die "the $mem_routes routes do not proxy"
settle
rss_routes=$(rss_mb "$mpid")

# churn FROM TO: changes FROM..TO-1, each a PATCH of route-(i mod N) to the path /c<i>/, sent by
# one curl (one keep-alive connection); then waits until the last one proxies.
churn() {
    local i cfg=$work/churn.cfg
    : >"$cfg"
    for ((i = $1; i < $2; i++)); do
        [ "$i" = "$1" ] || echo next >>"$cfg"
        cat >>"$cfg" <<EOF
url = "http://127.0.0.1:${kong_admin[mroutes]}/routes/route-$((i % mem_routes))"
request = "PATCH"
header = "content-type: application/json"
data = "{\"paths\": [\"/c$i/\"]}"
output = "/dev/null"
write-out = "%{http_code}\n"
EOF
    done
    curl -s -K "$cfg" >"$work/churn.codes" || die "churn: curl failed"
    if grep -vq '^200$' "$work/churn.codes"; then
        sort "$work/churn.codes" | uniq -c >&2
        die "churn: an Admin API write did not answer 200"
    fi
    wait_200 "http://127.0.0.1:${kong_proxy[mroutes]}/c$(($2 - 1))/tiny" || die "churn: change $2 never reached the proxy"
}
tenth=$(((churn + 9) / 10))
churn_start=$(date +%s.%N)
churn 0 "$tenth"
settle
rss_churn_tenth=$(rss_mb "$mpid")
churn "$tenth" "$churn"
churn_secs=$(awk -v a="$churn_start" -v b="$(date +%s.%N)" -v s="$([ "$smoke" = 1 ] && echo 0.2 || echo 2)" \
    'BEGIN { printf "%.1f", b - a - s }') # less the settle between the two parts
settle
rss_churn=$(rss_mb "$mpid")
stop_kong "$work/mroutes/prefix"

# --- Report -------------------------------------------------------------------------------------

# med SCENARIO TARGET COLUMN: the median over rounds ("" when the target was not run).
med() {
    awk -F'\t' -v s="$1" -v t="$2" -v c="$3" '$1 == s && $2 == t { print $c }' "$results" |
        sort -g | awk '{ v[NR] = $1 } END {
            if (NR == 0) exit; if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
ratio() { [ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }' || echo "—"; }
ms() { [ -n "$1" ] && awk -v v="$1" 'BEGIN { printf "%.2f ms", v / 1000 }' || echo "—"; }
added() { [ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.2f ms", (a - b) / 1000 }' || echo "—"; }

report() {
    local row s t ref rps
    echo "| scenario | target | req/s | p50 | p99 | p99 added | CPU µs/req | proxy CPU | ÷ direct req/s | ÷ nginx req/s | ÷ nginx CPU/req |"
    echo "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
    for row in bare:direct bare:nginx bare:kong "bare:kong-$routes" 1KB:direct 1KB:nginx 1KB:kong \
        64KB:direct 64KB:nginx 64KB:kong HTTPS:nginx-tls HTTPS:kong-tls paced:direct paced:nginx paced:kong \
        plugins:kong plugins:kong-plugins; do
        s=${row%%:*} t=${row#*:}
        rps=$(med "$s" "$t" 4)
        [ -n "$rps" ] || continue
        ref=nginx
        [ "$s" = HTTPS ] && ref=nginx-tls
        printf '| %-8s | %-12s | %9.0f | %9s | %9s | %9s | %6.1f | %4s%% | %5s | %5s | %5s |\n' "$s" "$t" "$rps" \
            "$(ms "$(med "$s" "$t" 5)")" "$(ms "$(med "$s" "$t" 6)")" \
            "$([ "$t" = direct ] && echo "—" || added "$(med "$s" "$t" 6)" "$(med "$s" direct 6)")" \
            "$(med "$s" "$t" 7)" "$(med "$s" "$t" 8)" \
            "$([ "$t" = direct ] && echo "—" || ratio "$rps" "$(med "$s" direct 4)")" \
            "$(case $t in direct | nginx*) echo "—" ;; *) ratio "$rps" "$(med "$s" $ref 4)" ;; esac)" \
            "$(case $t in direct | nginx*) echo "—" ;; *) ratio "$(med "$s" "$t" 7)" "$(med "$s" $ref 7)" ;; esac)"
    done
    echo
    echo "kong with $routes routes ÷ kong with 1 route (bare): req/s $(ratio "$(med bare "kong-$routes" 4)" "$(med bare kong 4)"), CPU/req $(ratio "$(med bare "kong-$routes" 7)" "$(med bare kong 7)")."
    if [ -n "$(med plugins kong-plugins 4)" ]; then
        echo "kong with key-auth + rate-limiting + prometheus ÷ kong bare (scenario plugins): req/s $(ratio "$(med plugins kong-plugins 4)" "$(med plugins kong 4)"), CPU/req $(ratio "$(med plugins kong-plugins 7)" "$(med plugins kong 7)")."
    fi
    echo "CPU µs/req: the target's own CPU (for direct: the upstream's); proxy CPU: its share of one CPU during the run."
    echo "kong under test: nginx_worker_processes = 1, $threads_bench threads in all (the main thread runs the runtime; the rest are blocking-pool threads)."
    echo
    echo "| kong memory (RSS) | MB |"
    echo "|---|--:|"
    printf '| idle (no entities, %s threads) | %s |\n' "$threads_idle" "$rss_idle"
    printf '| %s routes (SQLite, db_import then start) | %s |\n' "$mem_routes" "$rss_routes"
    printf '| after %s Admin API changes | %s |\n' "$tenth" "$rss_churn_tenth"
    printf '| after %s Admin API changes | %s (%+.1f from %s routes, %+.1f from %s changes) |\n' "$churn" "$rss_churn" \
        "$(awk -v a="$rss_churn" -v b="$rss_routes" 'BEGIN { print a - b }')" "$mem_routes" \
        "$(awk -v a="$rss_churn" -v b="$rss_churn_tenth" 'BEGIN { print a - b }')" "$tenth"
    echo
    echo "The $churn changes (PATCH /routes/<name> with new paths, one keep-alive connection, until the last one proxies) took $churn_secs s."
}

echo "# bench/proxy.sh: $(date -u +%Y-%m-%d), $(nproc) CPUs ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), load average $load_start at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end" >"$work/report.md"
echo "# rounds=$rounds duration=${duration}s connections=$connections routes=$routes kong=$kong" >>"$work/report.md"
echo >>"$work/report.md"
report >>"$work/report.md"
cat "$work/report.md"
if [ -n "${OUT:-}" ]; then cp "$work/report.md" "$OUT"; log "markdown written to $OUT"; fi
[ "$smoke" = 1 ] && log "smoke run: the harness works (these figures mean nothing)"
exit 0
