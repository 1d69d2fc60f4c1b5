#!/usr/bin/env bash
# A local three-node RabbitMQ cluster for trying Cargo against several brokers.
#
#   scripts/rabbitmq-cluster.sh start             start (or finish starting) the cluster
#   scripts/rabbitmq-cluster.sh stop              stop every node and delete its data
#   scripts/rabbitmq-cluster.sh status            which nodes run, and the cluster's view
#   scripts/rabbitmq-cluster.sh url               RABBITMQ_URL listing the three nodes
#   scripts/rabbitmq-cluster.sh ctl NODE ARGS…    rabbitmqctl on a node (a, b or c)
#   scripts/rabbitmq-cluster.sh queues NODE ARGS… rabbitmq-queues on a node
#   scripts/rabbitmq-cluster.sh streams NODE ARGS… rabbitmq-streams on a node
#
# Nodes cargo-a@localhost, cargo-b@localhost, cargo-c@localhost: AMQP on
# 127.0.0.1:${RABBITMQ_CLUSTER_BASE_PORT}+0/1/2 (default 5681-5683), management on
# 15681-15683, Erlang distribution on 25681-25683. Their data, logs, configs and
# their own Erlang cookie live under RABBITMQ_CLUSTER_DIR (default
# /tmp/cargo-cluster-$UID). They run from /usr/lib/rabbitmq/bin with HOME set
# to that directory, so they share a cookie with each other but never with the
# machine's own node rabbit@localhost (5672), which this script cannot reach,
# let alone stop. Every wait is bounded (RABBITMQ_CLUSTER_WAIT_SECONDS, default
# 120); `start` on a running cluster only checks it.
set -euo pipefail
SCRIPT_NAME=rabbitmq-cluster
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DIR="${RABBITMQ_CLUSTER_DIR:-/tmp/cargo-cluster-${UID}}"
BASE="${RABBITMQ_CLUSTER_BASE_PORT:-5681}"
WAIT="${RABBITMQ_CLUSTER_WAIT_SECONDS:-120}"
RMQ_BIN="${RABBITMQ_BIN_DIR:-/usr/lib/rabbitmq/bin}"
NODES=(a b c)
[[ "$BASE" =~ ^[0-9]+$ ]] && ((BASE >= 1024 && BASE + 2 + 20000 <= 65535)) ||
    die "RABBITMQ_CLUSTER_BASE_PORT must be a port from 1024 to 45533 (got '$BASE')"
[[ "$WAIT" =~ ^[0-9]+$ ]] || die "RABBITMQ_CLUSTER_WAIT_SECONDS must be a number of seconds (got '$WAIT')"
[[ -x "$RMQ_BIN/rabbitmq-server" ]] ||
    die "RabbitMQ is not installed at $RMQ_BIN (apt-get install rabbitmq-server, or set RABBITMQ_BIN_DIR)"

index() { case "$1" in a) echo 0 ;; b) echo 1 ;; c) echo 2 ;; *) die "unknown node '$1' (a, b or c)" ;; esac; }
node_name() { echo "cargo-$1@localhost"; }
amqp_port() { echo $((BASE + $(index "$1"))); }
mgmt_port() { echo $((BASE + 10000 + $(index "$1"))); }
dist_port() { echo $((BASE + 20000 + $(index "$1"))); }

# Every RabbitMQ command runs with the node's own environment (never the
# machine's /etc/rabbitmq files, never root's or rabbitmq's cookie).
with_node_env() {  # with_node_env NODE COMMAND… : run COMMAND in that node's environment
    local n="$1" d="$DIR/$1"
    shift
    env HOME="$DIR" \
        RABBITMQ_NODENAME="$(node_name "$n")" \
        RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
        RABBITMQ_NODE_PORT="$(amqp_port "$n")" \
        RABBITMQ_DIST_PORT="$(dist_port "$n")" \
        RABBITMQ_MNESIA_BASE="$d/mnesia" \
        RABBITMQ_LOG_BASE="$d/log" \
        RABBITMQ_PID_FILE="$d/pid" \
        RABBITMQ_CONFIG_FILE="$d/rabbitmq.conf" \
        RABBITMQ_ADVANCED_CONFIG_FILE="$d/advanced.config" \
        RABBITMQ_ENABLED_PLUGINS_FILE="$d/enabled_plugins" \
        RABBITMQ_CONF_ENV_FILE="$d/rabbitmq-env.conf" \
        ERL_EPMD_ADDRESS=127.0.0.1 \
        ERL_CRASH_DUMP="$d/log/erl_crash.dump" \
        "$@"
}
rmq() {  # rmq NODE TOOL ARGS… : a RabbitMQ CLI tool aimed at that node, bounded
    local n="$1" tool="$2"
    shift 2
    # A CLI tool that cannot reach its node (no cookie yet, node gone) would leave
    # an erl_crash.dump in the caller's directory: CLI tools write none.
    with_node_env "$n" env ERL_CRASH_DUMP_SECONDS=0 timeout "$WAIT" "$RMQ_BIN/$tool" -n "$(node_name "$n")" "$@"
}

write_config() {
    local n="$1" d="$DIR/$1"
    mkdir -p "$d/mnesia" "$d/log"
    cat >"$d/rabbitmq.conf" <<EOF
listeners.tcp.default = 127.0.0.1:$(amqp_port "$n")
management.tcp.ip = 127.0.0.1
management.tcp.port = $(mgmt_port "$n")
# a small machine shared with others: do not block publishers at 40% of its RAM
vm_memory_high_watermark.relative = 0.6
disk_free_limit.absolute = 200MB
EOF
    echo "[]." >"$d/advanced.config"
    echo "[rabbitmq_management]." >"$d/enabled_plugins"
    echo "export ERL_FLAGS=\"-kernel inet_dist_use_interface {127,0,0,1}\"" >"$d/rabbitmq-env.conf"
}

ensure_cookie() {
    mkdir -p "$DIR"
    if [[ ! -s "$DIR/.erlang.cookie" ]]; then
        (umask 077 && head -c 30 /dev/urandom | od -An -tx1 | tr -d ' \n' | tr a-f A-F >"$DIR/.erlang.cookie")
    fi
    chmod 400 "$DIR/.erlang.cookie"
}

running() { rmq "$1" rabbitmqctl ping >/dev/null 2>&1; }

port_taken() { timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null; }

start_node() {
    local n="$1"
    if running "$n"; then
        say "$(node_name "$n") already running"
        return
    fi
    local p
    for p in "$(amqp_port "$n")" "$(mgmt_port "$n")" "$(dist_port "$n")"; do
        port_taken "$p" && die "port $p (for $(node_name "$n")) is used by another process; set RABBITMQ_CLUSTER_BASE_PORT"
    done
    write_config "$n"
    say "starting $(node_name "$n") (AMQP $(amqp_port "$n"), management $(mgmt_port "$n"))"
    with_node_env "$n" "$RMQ_BIN/rabbitmq-server" -detached >"$DIR/$n/log/detached.out" 2>&1 ||
        die "$(node_name "$n") did not start: $(tail -5 "$DIR/$n/log/detached.out")"
}

await_node() {
    local n="$1" deadline=$((SECONDS + WAIT))
    # await_startup fails at once while the VM is not yet reachable: wait for it first.
    until running "$n"; do
        ((SECONDS < deadline)) || break
        sleep 0.5
    done
    rmq "$n" rabbitmqctl await_startup --timeout "$WAIT" >/dev/null 2>&1 || {
        local logs
        logs="$(tail -n 20 "$DIR/$n"/log/*.log 2>/dev/null | tail -n 20 || true)"
        die "$(node_name "$n") did not boot within ${WAIT}s; its log ends with:
$logs"
    }
}

cluster_members() {  # the running nodes as node ${1:-a} sees them, one a line
    rmq "${1:-a}" rabbitmqctl cluster_status --formatter json 2>/dev/null |
        python3 -c 'import json,sys; print("\n".join(json.load(sys.stdin).get("running_nodes", [])))'
}

join_node() {
    local n="$1"
    if cluster_members | grep -qx "$(node_name "$n")"; then
        return
    fi
    say "joining $(node_name "$n") to $(node_name a)"
    rmq "$n" rabbitmqctl stop_app >>"$DIR/$n/log/join.out" 2>&1
    rmq "$n" rabbitmqctl reset >>"$DIR/$n/log/join.out" 2>&1
    rmq "$n" rabbitmqctl join_cluster "$(node_name a)" >>"$DIR/$n/log/join.out" 2>&1 ||
        die "$(node_name "$n") could not join $(node_name a)"
    rmq "$n" rabbitmqctl start_app >>"$DIR/$n/log/join.out" 2>&1
}

await_management() {
    local n="$1" deadline=$((SECONDS + WAIT))
    until curl -sf -o /dev/null -u guest:guest "http://127.0.0.1:$(mgmt_port "$n")/api/overview"; do
        ((SECONDS < deadline)) || die "management API of $(node_name "$n") not answering on $(mgmt_port "$n") after ${WAIT}s"
        sleep 0.5
    done
}

cluster_url() {
    local out="" n
    for n in "${NODES[@]}"; do
        out+="${out:+,}amqp://guest:guest@127.0.0.1:$(amqp_port "$n")/"
    done
    echo "$out"
}

cmd_start() {
    ensure_cookie
    local n
    for n in "${NODES[@]}"; do start_node "$n"; done
    for n in "${NODES[@]}"; do await_node "$n"; done
    for n in b c; do join_node "$n"; done
    for n in "${NODES[@]}"; do await_node "$n"; done
    local members
    members="$(cluster_members | sort | tr '\n' ' ')"
    [[ "$members" == "cargo-a@localhost cargo-b@localhost cargo-c@localhost " ]] ||
        die "cluster incomplete: running nodes are '$members'"
    for n in "${NODES[@]}"; do await_management "$n"; done
    ok "cluster up: $members"
    ok "RABBITMQ_URL=$(cluster_url)"
    ok "CARGO_MANAGEMENT_URL=http://guest:guest@127.0.0.1:$(mgmt_port a)"
}

cmd_stop() {
    local n pid
    for n in "${NODES[@]}"; do
        [[ -d "$DIR/$n" ]] || continue
        if running "$n"; then
            say "stopping $(node_name "$n")"
            RABBITMQ_CLUSTER_WAIT_SECONDS=60 rmq "$n" rabbitmqctl stop >/dev/null 2>&1 || true
        fi
        # A node that would not stop (or whose app was stopped) still has a pid.
        if [[ -s "$DIR/$n/pid" ]]; then
            pid="$(cat "$DIR/$n/pid" 2>/dev/null || true)"  # gone once the node stopped
            if [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null &&
                grep -q "cargo-$n@localhost" "/proc/$pid/cmdline" 2>/dev/null; then
                kill -KILL "$pid" 2>/dev/null || true
            fi
        fi
    done
    rm -rf "$DIR"
    ok "cluster stopped and $DIR removed"
}

cmd_status() {
    local n state seen=""
    for n in "${NODES[@]}"; do
        if ! running "$n"; then
            state=down
        elif rmq "$n" rabbitmq-diagnostics check_running >/dev/null 2>&1; then
            state=running
            [[ -n "$seen" ]] || seen="$n"
        else
            state="app stopped"
        fi
        echo "$(node_name "$n") amqp=127.0.0.1:$(amqp_port "$n") management=127.0.0.1:$(mgmt_port "$n") $state"
    done
    if [[ -n "$seen" ]]; then
        echo "running cluster members (as $(node_name "$seen") sees them): $(cluster_members "$seen" | sort | tr '\n' ' ')"
    fi
    echo "RABBITMQ_URL=$(cluster_url)"
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    url) cluster_url ;;
    ctl) shift; n="${1:?ctl NODE ARGS…}"; index "$n" >/dev/null; shift; rmq "$n" rabbitmqctl "$@" ;;
    queues) shift; n="${1:?queues NODE ARGS…}"; index "$n" >/dev/null; shift; rmq "$n" rabbitmq-queues "$@" ;;
    streams) shift; n="${1:?streams NODE ARGS…}"; index "$n" >/dev/null; shift; rmq "$n" rabbitmq-streams "$@" ;;
    *) die "usage: $0 start|stop|status|url|ctl NODE ARGS…|queues NODE ARGS…|streams NODE ARGS…" ;;
esac
