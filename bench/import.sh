#!/bin/sh
# Datastore import benchmark: 10,000 services + 10,000 routes + 1,000 consumers with key-auth
# credentials, loaded (1) into the embedded SQLite file with `kong config db_import`, (2) into a
# throw-away PostgreSQL cluster the same way, and (3) as a DB-less node's declarative_config
# (`kong start` returns once the node is ready, so its duration includes the whole load).
#
# Prints wall time and peak memory (max RSS) of each, next to the goals (≤ 5 s, ≤ 150 MB).
# Usage: bench/import.sh [--smoke]   (--smoke: 200 services, for CI; no figures recorded)
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
services=10000
consumers=1000
if [ "${1:-}" = "--smoke" ]; then services=200; consumers=20; fi

work=$(mktemp -d /tmp/kong-bench-import.XXXXXX)
chmod 755 "$work"
pg_dir=""
cleanup() {
    if [ -n "$pg_dir" ]; then
        runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl -D "$pg_dir/data" -m immediate stop >/dev/null 2>&1 || true
    fi
    if [ -f "$work/off/pids/nginx.pid" ]; then "$kong" stop -p "$work/off" >/dev/null 2>&1 || true; fi
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

echo "building kong (release)..." >&2
(cd "$root" && cargo build --release --quiet)
kong="$root/target/release/kong"

file="$work/kong.yml"
echo "generating $services services, $services routes, $consumers consumers with key-auth..." >&2
awk -v n="$services" -v c="$consumers" 'BEGIN {
    print "_format_version: \"3.0\"";
    print "services:";
    for (i = 0; i < n; i++) {
        printf "  - name: svc-%d\n    url: http://upstream-%d.internal:8080/v1\n", i, i % 50;
        printf "    routes:\n      - name: route-%d\n        paths: [\"/api/%d\"]\n", i, i;
    }
    print "consumers:";
    for (i = 0; i < c; i++) {
        printf "  - username: user-%d\n    keyauth_credentials:\n      - key: key-%d\n", i, i;
    }
}' > "$file"

# measure LABEL CMD...: runs CMD under /usr/bin/time; prints "LABEL seconds peak-MB".
measure() {
    label=$1; shift
    /usr/bin/time -f "%e %M" -o "$work/time" "$@" >"$work/out" 2>&1 || {
        echo "$label failed:" >&2; cat "$work/out" >&2; exit 1; }
    read -r secs kb < "$work/time"
    printf '%-28s %8.2f s %8.1f MB\n' "$label" "$secs" "$(echo "$kb" | awk '{print $1/1024}')"
}

echo
printf '%-28s %10s %11s   (goals: <= 5 s, <= 150 MB)\n' "import" "time" "peak RSS"

mkdir -p "$work/sqlite"
measure "sqlite db_import" env KONG_PREFIX="$work/sqlite" "$kong" config db_import "$file"

if [ -x /usr/lib/postgresql/15/bin/initdb ] && id postgres >/dev/null 2>&1; then
    pg_dir="$work/pg"; mkdir -p "$pg_dir"; chown postgres "$pg_dir"
    port=$(awk 'BEGIN { srand(); print 20000 + int(rand() * 20000) }')
    runuser -u postgres -- /usr/lib/postgresql/15/bin/initdb -D "$pg_dir/data" -A trust -U kong >/dev/null
    runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl -D "$pg_dir/data" -l "$pg_dir/log" -w \
        -o "-p $port -k $pg_dir -c listen_addresses=127.0.0.1 -c fsync=on" start >/dev/null
    runuser -u postgres -- /usr/lib/postgresql/15/bin/createdb -h 127.0.0.1 -p "$port" -U kong kong
    mkdir -p "$work/postgres"
    pg_env="KONG_PREFIX=$work/postgres KONG_DATABASE=postgres KONG_PG_HOST=127.0.0.1 KONG_PG_PORT=$port KONG_PG_USER=kong KONG_PG_DATABASE=kong"
    env $pg_env "$kong" migrations bootstrap >/dev/null
    measure "postgres db_import" env $pg_env "$kong" config db_import "$file"
else
    echo "postgres db_import: skipped (no PostgreSQL 15 server binaries)"
fi

mkdir -p "$work/off"
port() { awk 'BEGIN { srand(); print 20000 + int(rand() * 20000) }'; }
start_off() {
    KONG_PREFIX="$work/off" KONG_DATABASE=off KONG_DECLARATIVE_CONFIG="$file" \
    KONG_PROXY_LISTEN="127.0.0.1:$(port)" KONG_ADMIN_LISTEN="127.0.0.1:$(( $(port) + 1 ))" \
        "$kong" start
}
t0=$(date +%s.%N)
start_off >"$work/out" 2>&1 || { echo "DB-less start failed:" >&2; cat "$work/out" >&2; exit 1; }
t1=$(date +%s.%N)
pid=$(cat "$work/off/pids/nginx.pid")
hwm=$(awk '/VmHWM/ { print $2 / 1024 }' "/proc/$pid/status")
printf '%-28s %8.2f s %8.1f MB\n' "DB-less start (declarative)" "$(echo "$t0 $t1" | awk '{print $2 - $1}')" "$hwm"
"$kong" stop -p "$work/off" >/dev/null
