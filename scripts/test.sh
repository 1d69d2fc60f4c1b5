#!/usr/bin/env bash
# THE test command: environment, broker, lint, types, then the whole pytest suite.
#
#   scripts/test.sh                   # everything
#   scripts/test.sh -k topology -x    # arguments go to pytest
#
# Steps: scripts/bootstrap.sh (.venv), scripts/tools.sh (.venv-tools: checkov; .tools: promtool, prometheus, amtool),
# scripts/browser.sh (Debian's chromium for the console's browser tests),
# scripts/rabbitmq.sh (a usable RabbitMQ),
# ruff check, mypy (configured in pyproject.toml), pytest. Lint and type errors
# do not stop the tests from running; any failure makes the exit status non-zero.
# pytest collecting no tests (exit 5) is a failure: a filter that selects nothing
# must not pass for green.
set -uo pipefail
SCRIPT_NAME="test"
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT" || exit 1

results=()
failed=0
record() {  # record NAME STATUS SECONDS [NOTE]
    results+=("$(printf '%-10s %-5s %5ss  %s' "$1" "$2" "$3" "${4:-}")")
    [[ "$2" == ok ]] || failed=1
}
summary() {
    printf '\n%s== summary ==%s\n' "$_bold" "$_reset" >&2
    printf '  %s\n' "${results[@]}" >&2
    if ((failed)); then
        printf '%sFAILED%s\n' "$_red" "$_reset" >&2
    else
        printf '%sall passed%s\n' "$_green" "$_reset" >&2
    fi
}
step() {  # step NAME COMMAND... : run, time and record one step
    local name="$1" start rc
    shift
    printf '\n%s== %s ==%s %s\n' "$_bold" "$name" "$_reset" "$*" >&2
    start=$SECONDS
    "$@" </dev/null
    rc=$?
    if ((rc == 0)); then record "$name" ok $((SECONDS - start)); else record "$name" FAIL $((SECONDS - start)) "exit $rc"; fi
    return "$rc"
}

if ! step bootstrap bash scripts/bootstrap.sh; then
    summary
    die "could not set up .venv (see above); nothing was tested"
fi
export PATH="$VENV/bin:$PATH"
export VIRTUAL_ENV="$VENV"

# Infrastructure checkers (checkov) live in .venv-tools, apart from .venv; promtool, prometheus
# and amtool in .tools (tests/ops). A failure
# here is recorded and the suite goes on; tests/deploy then says checkov is missing.
step tools bash scripts/tools.sh

# The console's browser tests (tests/browser) drive /usr/bin/chromium; without it they
# fail and name this script.
step browser bash scripts/browser.sh

if ! step rabbitmq bash scripts/rabbitmq.sh; then
    summary
    die "RabbitMQ is not usable (see above); the suite needs a real broker, so nothing was tested"
fi

# The code base is not ruff-formatted, so only `ruff check` runs (no `ruff format --check`).
step ruff ruff check --no-cache .   # a cache can hide import-order changes (first-party detection)
step mypy mypy

printf '\n%s== pytest ==%s pytest %s\n' "$_bold" "$_reset" "$*" >&2
start=$SECONDS
python -m pytest "$@" </dev/null
rc=$?
case "$rc" in
    0) record pytest ok $((SECONDS - start)) ;;
    5) record pytest FAIL $((SECONDS - start)) "exit 5: no tests were collected/selected (pytest $*)"
       warn "pytest collected no tests; a run that tests nothing counts as a failure" ;;
    *) record pytest FAIL $((SECONDS - start)) "exit $rc" ;;
esac

summary
exit "$failed"
