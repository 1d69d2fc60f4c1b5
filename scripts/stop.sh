# Stopping a Cargo process the way Kubernetes does. Source it (after lib.sh); do not run it.
# scripts/stack.sh uses it, and tests/integration/test_graceful_stop.py calls it directly.
# shellcheck shell=bash

# The pid is alive and not a zombie (an exited child of this shell not yet reaped).
process_alive() {
    [[ -n "$1" ]] && kill -0 "$1" 2>/dev/null && [[ "$(ps -o stat= -p "$1" 2>/dev/null)" != Z* ]]
}

is_cargo_process() {  # the pid runs cargoctl (guards against a recycled pid)
    process_alive "$1" && ps -o args= -p "$1" 2>/dev/null | grep -q cargoctl
}

# stop_process NAME PID SECONDS: SIGTERM the process itself, wait up to SECONDS for it
# to exit, then SIGKILL whatever is left of its process group.
#
# Only the main process gets SIGTERM, as a pod's PID 1 does from Kubernetes. For a
# worker that is Celery's warm shutdown: it stops taking tasks, lets the running ones
# finish (they are acknowledged and end succeeded/failed as usual), then stops its
# prefork children and exits 0. A SIGTERM to the whole group would reach the
# children too and end their tasks at once (WorkerLostError: the message is
# requeued and the task runs again elsewhere).
stop_process() {
    local name="$1" pid="$2" seconds="$3" group="" deadline
    is_cargo_process "$pid" || return 0
    # Started with setsid, the process leads its own group, which also holds a
    # prefork worker's children.
    if [[ "$(ps -o pgid= -p "$pid" | tr -d ' ')" == "$pid" ]]; then group="-$pid"; fi
    say "stopping $name (pid $pid; waiting up to ${seconds}s for it to finish its work) ..."
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + seconds))
    while process_alive "$pid" && ((SECONDS < deadline)); do sleep 0.2; done
    if process_alive "$pid"; then
        warn "$name did not stop within ${seconds}s; killing it (running tasks go back to the queue)"
        kill -KILL -- "${group:-$pid}" 2>/dev/null || true
    fi
    if [[ -n "$group" ]]; then kill -KILL -- "$group" 2>/dev/null || true; fi  # stragglers
    wait "$pid" 2>/dev/null || true
}
