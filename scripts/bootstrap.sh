#!/usr/bin/env bash
# Create .venv (Python >= 3.11) and install Cargo with its dev tools into it.
#
# Idempotent and fast when nothing changed: the install is skipped while the
# stamp in .venv matches pyproject.toml, the interpreter and this checkout.
# PYTHON=/path/to/python3.12 picks the interpreter used to create the venv.
set -euo pipefail
SCRIPT_NAME=bootstrap
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

MIN_PYTHON="3.11"
STAMP="$VENV/.cargo-bootstrap"

python_ok() {  # python_ok CMD: CMD exists and is Python >= MIN_PYTHON
    command -v "$1" >/dev/null 2>&1 &&
        "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null
}

find_python() {
    if [[ -n "${PYTHON:-}" ]]; then
        python_ok "$PYTHON" || die "PYTHON=$PYTHON is not Python >= $MIN_PYTHON"
        echo "$PYTHON"
        return
    fi
    local candidate
    for candidate in python3 python3.13 python3.12 python3.11; do
        if python_ok "$candidate"; then
            echo "$candidate"
            return
        fi
    done
    die "Python >= $MIN_PYTHON is required and none was found (python3 is $(python3 --version 2>&1 || echo missing)).
  Debian/Ubuntu: sudo apt-get install -y python3 python3-venv   (3.11 or newer)
  or set PYTHON=/path/to/python3.11 and re-run."
}

# A venv whose interpreter is gone or too old (e.g. the system Python was
# upgraded) is rebuilt rather than half-used.
if [[ -d "$VENV" ]] && ! python_ok "$VENV/bin/python"; then
    warn ".venv exists but its Python is missing or older than $MIN_PYTHON; recreating it"
    rm -rf "$VENV"
fi

if [[ ! -x "$VENV/bin/python" ]]; then
    python="$(find_python)"
    say "creating .venv with $("$python" --version 2>&1) ($(command -v "$python"))"
    "$python" -m venv "$VENV" ||
        die "could not create .venv; on Debian/Ubuntu install python3-venv (sudo apt-get install -y python3-venv)"
fi

want="$( (sha256sum pyproject.toml; echo "dev,bench"; "$VENV/bin/python" -VV; echo "$REPO_ROOT") | sha256sum | cut -d' ' -f1)"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want" && -x "$VENV/bin/cargoctl" ]]; then
    ok "environment up to date ($VENV)"
    exit 0
fi

say "installing cargo-jobs[dev,bench] into .venv (pip install -e '.[dev,bench]') ..."
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if ! "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input -q \
        -e '.[dev,bench]' >"$log" 2>&1; then
    cat "$log" >&2
    die "pip install -e '.[dev,bench]' failed (output above)"
fi
echo "$want" >"$STAMP"
ok "environment ready ($VENV)"
