# Helpers for the benchmarks that run throw-away DB-less kong nodes on 127.0.0.1 (sourced by
# bench/allocs.sh and bench/instructions.sh). Expects $KONG_BIN and $work (a temporary
# directory the caller removes).

# A free TCP port on 127.0.0.1.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# node_conf NAME PROXY_PORT ADMIN_PORT YAML [EXTRA_CONF_LINE...]: writes a node's kong.yml and
# kong.conf under $work/node-NAME and prints the kong.conf path.
node_conf() {
    local dir="$work/node-$1" proxy=$2 admin=$3 yaml=$4
    shift 4
    mkdir -p "$dir"
    printf '%s\n' "$yaml" >"$dir/kong.yml"
    {
        cat <<CONF
prefix = $dir/prefix
database = off
declarative_config = $dir/kong.yml
proxy_listen = 127.0.0.1:$proxy
admin_listen = 127.0.0.1:$admin
status_listen = off
proxy_access_log = off
admin_access_log = off
CONF
        for line in "$@"; do printf '%s\n' "$line"; done
    } >"$dir/kong.conf"
    echo "$dir/kong.conf"
}

# Stops every node started under $work.
stop_nodes() {
    local d
    for d in "$work"/node-*; do
        [ -d "$d" ] && "$KONG_BIN" stop -p "$d/prefix" >/dev/null 2>&1 || true
    done
}

# A node answering 200 "ok" itself (a global request-termination plugin); the service only
# gives the route a home.
ANSWER_YAML='_format_version: "3.0"
services:
- name: answer
  url: http://127.0.0.1:9
  routes:
  - name: all
    paths: ["/"]
plugins:
- name: request-termination
  config: {status_code: 200, body: "ok", content_type: text/plain}'
