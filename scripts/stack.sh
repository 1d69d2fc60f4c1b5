#!/usr/bin/env bash
# THE local-stack command: RabbitMQ, the topology, a gateway and a Celery worker.
#
#   scripts/stack.sh            # run in the foreground; Ctrl-C (or SIGTERM) stops both
#   scripts/stack.sh --detach   # leave them running (pid files in .local/run/)
#   scripts/stack.sh --stop     # stop a detached stack
#
# Steps: scripts/bootstrap.sh, scripts/rabbitmq.sh, `cargoctl topology declare`,
# then `cargoctl gateway --host 127.0.0.1 --port $CARGO_GATEWAY_PORT` (default 8000)
# and `cargoctl worker --concurrency 2`, logging to .local/logs/. The stack is
# up when the gateway's /readyz answers 200 and the worker consumes the task queue.
# Configuration (RABBITMQ_URL, CARGO_*) is passed through to the processes.
# Stopping sends SIGTERM to the worker's main process only (Celery's warm shutdown:
# running tasks finish, no new ones start) and waits up to $STACK_STOP_SECONDS
# (default 120) for it, then stops the gateway (scripts/stop.sh).
set -euo pipefail
SCRIPT_NAME=stack
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/stop.sh"
cd "$REPO_ROOT"

mode=foreground
case "${1:-}" in
    "") ;;
    --detach | -d) mode=detach ;;
    --stop) mode=stop ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (use --detach, --stop or --help)" ;;
esac
(($# <= 1)) || die "one argument at most (--detach, --stop or --help)"

PORT="${CARGO_GATEWAY_PORT:-8000}"
# Only this script reads CARGO_GATEWAY_PORT; cargoctl rejects CARGO_ variables it
# does not know, so it must not reach the processes.
unset CARGO_GATEWAY_PORT
if ! [[ "$PORT" =~ ^[0-9]+$ ]] || ((10#$PORT < 1 || 10#$PORT > 65535)); then
    die "CARGO_GATEWAY_PORT must be a TCP port number (got '$PORT')"
fi
PORT=$((10#$PORT))
READY_SECONDS=90
STOP_SECONDS="${STACK_STOP_SECONDS:-120}"   # a Celery warm shutdown lets running tasks finish first
[[ "$STOP_SECONDS" =~ ^[0-9]+$ ]] || die "STACK_STOP_SECONDS must be a whole number of seconds (got '$STOP_SECONDS')"

STATE="$REPO_ROOT/.local"
LOGS="$STATE/logs"
RUN="$STATE/run"
NAMES=(gateway worker)
GATEWAY_URL="http://127.0.0.1:$PORT"

pid_of() { cat "$RUN/$1.pid" 2>/dev/null || true; }

stop_all() {
    local name
    for name in worker gateway; do
        stop_process "$name" "$(pid_of "$name")" "$STOP_SECONDS"
        rm -f "$RUN/$name.pid"
    done
}

if [[ "$mode" == stop ]]; then
    running=0
    for name in "${NAMES[@]}"; do is_cargo_process "$(pid_of "$name")" && running=1; done
    if ((running)); then stop_all; ok "stack stopped"; else
        rm -f "$RUN"/*.pid
        say "no stack is running (no live pid files in .local/run/)"
    fi
    exit 0
fi

for name in "${NAMES[@]}"; do
    if is_cargo_process "$(pid_of "$name")"; then
        die "a stack is already running ($name pid $(pid_of "$name")); stop it with: scripts/stack.sh --stop"
    fi
done
rm -f "$RUN"/*.pid
if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    die "port $PORT is already in use; free it, or pick another: CARGO_GATEWAY_PORT=8001 scripts/stack.sh"
fi

bash scripts/bootstrap.sh
bash scripts/rabbitmq.sh
export PATH="$VENV/bin:$PATH"
cargoctl topology declare || die "could not declare the topology (see above)"

mkdir -p "$LOGS" "$RUN"
trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

spawn() {  # spawn NAME COMMAND...: start in its own session, log to .local/logs/NAME.log
    local name="$1"
    shift
    local pid
    if command -v setsid >/dev/null 2>&1; then
        setsid "$@" >"$LOGS/$name.log" 2>&1 </dev/null &
        pid=$!
    else  # no setsid (macOS): job control gives the process its own group
        set -m
        "$@" >"$LOGS/$name.log" 2>&1 </dev/null &
        pid=$!
        set +m
    fi
    echo "$pid" >"$RUN/$name.pid"
    say "started $name (pid $pid): $* > .local/logs/$name.log"
}

spawn gateway cargoctl gateway --host 127.0.0.1 --port "$PORT"
spawn worker cargoctl worker --concurrency 2

fail_start() {  # fail_start NAME MESSAGE: show the log's tail and give up (the EXIT trap stops both)
    printf '%s\n--- last lines of .local/logs/%s.log ---\n' "$2" "$1" >&2
    tail -n 40 "$LOGS/$1.log" >&2 || true
    die "the stack did not start"
}

worker_consumes() {
    python - <<'PY' 2>/dev/null
import asyncio, sys
from broker.management import ManagementClient
from broker.settings import load_settings

settings = load_settings()

async def consumers() -> int:
    async with ManagementClient(settings.management_api, timeout=3) as api:
        queue = await api.get_queue(settings.vhost, settings.task_queue)
    return int(queue.get("consumers") or 0)

sys.exit(0 if asyncio.run(consumers()) > 0 else 1)
PY
}

say "waiting for $GATEWAY_URL/readyz and for the worker to consume (up to ${READY_SECONDS}s) ..."
deadline=$((SECONDS + READY_SECONDS))
gateway_ready=0 worker_ready=0
until ((gateway_ready && worker_ready)); do
    is_cargo_process "$(pid_of gateway)" || fail_start gateway "the gateway exited during start-up"
    is_cargo_process "$(pid_of worker)" || fail_start worker "the worker exited during start-up"
    if ((!gateway_ready)) &&
        [[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$GATEWAY_URL/readyz" || true)" == 200 ]]; then
        gateway_ready=1
        ok "gateway ready"
    fi
    if ((!worker_ready)) && worker_consumes; then
        worker_ready=1
        ok "worker consuming"
    fi
    if ((SECONDS >= deadline)); then
        ((gateway_ready)) || fail_start gateway "the gateway's /readyz did not answer 200 within ${READY_SECONDS}s"
        fail_start worker "the worker did not start consuming within ${READY_SECONDS}s"
    fi
    ((gateway_ready && worker_ready)) || sleep 1
done

# Where the management UI is, without the password unless it is the well-known guest one.
mgmt_ui="$(python - <<'PY'
from urllib.parse import unquote, urlsplit, urlunsplit
from broker.settings import load_settings

parts = urlsplit(load_settings().management_api)
netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
user, password = unquote(parts.username or ""), unquote(parts.password or "")
login = "guest/guest" if (user, password) == ("guest", "guest") else f"user {user}"
print(f"{urlunsplit((parts.scheme, netloc, parts.path, '', ''))}  ({login})")
PY
)"

cat <<EOF

${_bold}Cargo is running${_reset}
  gateway        $GATEWAY_URL   (/healthz, /readyz, /metrics, /openapi.json)
  websocket      ws://127.0.0.1:$PORT/ws
  RabbitMQ UI    $mgmt_ui
  logs           .local/logs/gateway.log  .local/logs/worker.log

  try:  curl -X POST '$GATEWAY_URL/distance/?x=3&y=4'
        curl $GATEWAY_URL/tasks/<task_id>
        CARGO_GATEWAY_URL=$GATEWAY_URL .venv/bin/cargoctl submit calculate_distance --args '[3, 4]' --wait

EOF

if [[ "$mode" == detach ]]; then
    trap - EXIT INT TERM
    ok "detached: gateway pid $(pid_of gateway), worker pid $(pid_of worker); stop with: scripts/stack.sh --stop"
    exit 0
fi

say "Ctrl-C stops the stack"
while is_cargo_process "$(pid_of gateway)" && is_cargo_process "$(pid_of worker)"; do
    sleep 1 &
    wait $! || true
done
for name in "${NAMES[@]}"; do
    is_cargo_process "$(pid_of "$name")" || warn "$name exited on its own; see .local/logs/$name.log"
done
exit 1
