#!/usr/bin/env bash
# Install the browser the console's tests drive (tests/browser): Debian's chromium at
# /usr/bin/chromium, driven by Playwright for Python (the `dev` extra) through
# executable_path. Playwright's own browser download (`playwright install`) is never
# used: the packaged Chromium comes from the distribution's registry like every other tool.
#
#   scripts/browser.sh            # install chromium when /usr/bin/chromium is missing
#
# Idempotent and fast when Chromium is there. Needs root (or sudo) for apt-get.
set -euo pipefail
SCRIPT_NAME=browser
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

CHROMIUM=/usr/bin/chromium

chromium_version() { "$CHROMIUM" --headless --no-sandbox --version 2>/dev/null | head -1; }

if [[ -x "$CHROMIUM" ]]; then
    ok "chromium present ($CHROMIUM: $(chromium_version || echo 'version unknown'))"
    exit 0
fi

command -v apt-get >/dev/null 2>&1 ||
    die "no $CHROMIUM and no apt-get: install Chromium so that $CHROMIUM exists (the browser tests need it)"
if [[ $(id -u) == 0 ]]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
else
    die "installing chromium needs root: run 'apt-get install -y --no-install-recommends chromium' as root"
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
say "installing Debian's chromium (apt-get install --no-install-recommends chromium) ..."
# The package lists may be missing or stale on a fresh machine: update once, then install.
if ! "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends chromium >"$log" 2>&1; then
    say "refreshing the package lists (apt-get update) and trying again ..."
    "${as_root[@]}" apt-get update -q >"$log" 2>&1 || { cat "$log" >&2; die "apt-get update failed"; }
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends chromium >"$log" 2>&1 ||
        { cat "$log" >&2; die "apt-get install chromium failed (output above)"; }
fi
[[ -x "$CHROMIUM" ]] || die "chromium installed but $CHROMIUM is missing"
version="$(chromium_version)" || die "$CHROMIUM is installed but does not run"
ok "chromium ready ($CHROMIUM: $version)"
