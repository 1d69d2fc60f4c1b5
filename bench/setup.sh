#!/usr/bin/env bash
# Installs what the benchmarks need: the bench extra (FastAPI, uvicorn) into the
# project's venv, and the `wrk` HTTP load generator from Debian's packages when
# it is missing and we are root. Without wrk, bench.submit falls back to its own
# aiohttp load generator (slower, so it takes more CPU from the servers).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-.venv/bin/python}
"$PY" -m pip install --quiet -e '.[dev,bench]'

if command -v wrk >/dev/null 2>&1; then
    echo "wrk: $(command -v wrk)"
elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk
    echo "wrk: installed $(command -v wrk)"
else
    echo "wrk is not installed and cannot be installed here (not root or no apt-get);" \
         "bench.submit will use its aiohttp load generator" >&2
fi
