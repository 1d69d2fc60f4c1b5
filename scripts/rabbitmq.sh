#!/usr/bin/env bash
# Make the RabbitMQ named by RABBITMQ_URL usable for Cargo.
#
# Local broker (127.0.0.1, localhost, ::1, this host's name):
#   - nothing answers on the AMQP port: start `rabbitmq-server -detached` when it
#     is installed, otherwise say exactly what to install and exit non-zero;
#   - wait until the node has booted (`rabbitmqctl ping` / `await_startup`);
#   - enable the plugins Cargo needs (rabbitmq_management, rabbitmq_prometheus),
#     online and idempotently;
#   - wait until the management API answers, and create RABBITMQ_URL's vhost if
#     it does not exist yet.
# Remote broker: only checks that it is reachable and says what is missing.
#
# Environment: RABBITMQ_URL (default amqp://guest:guest@127.0.0.1:5672/),
# CARGO_MANAGEMENT_URL (default: the URL's host on port 15672),
# RABBITMQ_WAIT_SECONDS (how long to wait for each step, default 120).
set -euo pipefail
SCRIPT_NAME=rabbitmq
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

URL="${RABBITMQ_URL:-amqp://guest:guest@127.0.0.1:5672/}"
WAIT="${RABBITMQ_WAIT_SECONDS:-120}"
PLUGINS=(rabbitmq_management rabbitmq_prometheus)
[[ "$WAIT" =~ ^[0-9]+$ ]] || die "RABBITMQ_WAIT_SECONDS must be a number of seconds (got '$WAIT')"

# --- parse the URL -------------------------------------------------------------
re='^(amqps?)://(([^:@/]*)(:([^@/]*))?@)?(\[[^]]+\]|[^:/?#]+)(:([0-9]+))?(/([^?#]*))?([?#].*)?$'
[[ "$URL" =~ $re ]] ||
    die "RABBITMQ_URL must be an amqp:// or amqps:// URL with a host (got '$(redact_url "$URL")')"
scheme="${BASH_REMATCH[1]}"
user="${BASH_REMATCH[3]:-guest}"
pass="${BASH_REMATCH[5]:-guest}"
host="${BASH_REMATCH[6]}"
port="${BASH_REMATCH[8]:-}"
vhost_enc="${BASH_REMATCH[10]:-}"
[[ -n "$port" ]] || { [[ "$scheme" == amqps ]] && port=5671 || port=5672; }
tcp_host="${host#[}"; tcp_host="${tcp_host%]}"

urldecode() { local s="${1//+/ }"; printf '%b' "${s//%/\\x}"; }
urlencode_vhost() {  # like Python's quote(vhost, safe="")
    local s="$1" out="" c i
    for ((i = 0; i < ${#s}; i++)); do
        c="${s:i:1}"
        case "$c" in
            [a-zA-Z0-9._~-]) out+="$c" ;;
            *) out+="$(printf '%%%02X' "'$c")" ;;
        esac
    done
    printf '%s' "$out"
}
vhost="/"
[[ -n "$vhost_enc" ]] && vhost="$(urldecode "$vhost_enc")"

if [[ -n "${CARGO_MANAGEMENT_URL:-}" ]]; then
    mgmt="${CARGO_MANAGEMENT_URL%/}"
else
    [[ "$scheme" == amqps ]] && mscheme=https || mscheme=http
    mgmt="$mscheme://$user:$pass@$host:15672"
fi
mgmt_shown="$(redact_url "$mgmt")"
mgmt_ui="$(sed -E 's#^([a-z]+://)[^@/]*@#\1#' <<<"$mgmt")"
mhost="$(sed -E 's#^[a-z]+://([^@/]*@)?(\[[^]]+\]|[^:/]+).*#\2#' <<<"$mgmt")"
prometheus="http://$mhost:15692/metrics"

case "$tcp_host" in
    127.0.0.1 | localhost | ::1 | 0.0.0.0 | "$(hostname 2>/dev/null)" | "$(hostname -f 2>/dev/null)") local_broker=1 ;;
    *) local_broker=0 ;;
esac

# --- probes --------------------------------------------------------------------
# shellcheck disable=SC2016  # $1 and $2 expand in the inner bash
amqp_answers() { timeout 3 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$tcp_host" "$port" 2>/dev/null; }

http_status() {  # http_status URL -> HTTP status, or 000 when nothing answers
    if command -v curl >/dev/null 2>&1; then
        curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$1" 2>/dev/null || true
    else
        python3 - "$1" <<'PY' 2>/dev/null || echo 000
import base64, sys, urllib.error, urllib.parse, urllib.request
parts = urllib.parse.urlsplit(sys.argv[1])
url = urllib.parse.urlunsplit((parts.scheme, parts.hostname + (f":{parts.port}" if parts.port else ""), parts.path, parts.query, ""))
req = urllib.request.Request(url)
if parts.username is not None:
    token = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
    req.add_header("Authorization", "Basic " + base64.b64encode(token.encode()).decode())
try:
    print(urllib.request.urlopen(req, timeout=5).status)
except urllib.error.HTTPError as exc:
    print(exc.code)
PY
    fi
}

http_put() {  # http_put URL JSON -> HTTP status
    curl -s -o /dev/null -w '%{http_code}' --max-time 5 -X PUT \
        -H 'content-type: application/json' -d "$2" "$1" 2>/dev/null || true
}

# The Debian/RPM wrappers only let root or the rabbitmq user run the CLI tools.
find_tool() {
    local tool="$1" dir
    if command -v "$tool" >/dev/null 2>&1; then command -v "$tool"; return; fi
    for dir in /usr/sbin /usr/local/sbin /usr/lib/rabbitmq/bin /opt/homebrew/sbin /opt/rabbitmq/sbin; do
        [[ -x "$dir/$tool" ]] && { echo "$dir/$tool"; return; }
    done
    return 1
}
server="$(find_tool rabbitmq-server || true)"
ctl="$(find_tool rabbitmqctl || true)"
plugins_tool="$(find_tool rabbitmq-plugins || true)"
# The Debian/RPM wrappers let only root or the rabbitmq user run the server and
# CLI tools (as anyone else they misbehave), so only use them when allowed.
allowed() {  # allowed TOOL
    [[ -n "$1" ]] || return 1
    [[ "$(id -u)" == 0 || "$(id -un)" == rabbitmq ]] && return 0
    ! grep -qs 'Only root or rabbitmq' "$(readlink -f "$1")"
}
can_admin() { allowed "$ctl"; }

wait_until() {  # wait_until SECONDS COMMAND... (polls once a second)
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        ((SECONDS < deadline)) || return 1
        sleep 1
    done
}

node_booted() { "$ctl" -q ping >/dev/null 2>&1 && "$ctl" -q await_startup >/dev/null 2>&1; }
mgmt_answers() { [[ "$(http_status "$mgmt/api/overview")" != 000 ]]; }

say "broker: $(redact_url "$URL") (vhost '$vhost', $([[ $local_broker == 1 ]] && echo local || echo remote))"

# --- remote: check and report ----------------------------------------------------
if [[ "$local_broker" == 0 ]]; then
    missing=()
    amqp_answers || missing+=("nothing answers on $tcp_host:$port (AMQP); start RabbitMQ there or fix RABBITMQ_URL")
    status="$(http_status "$mgmt/api/overview")"
    case "$status" in
        200) ;;
        000) missing+=("the management API does not answer at $mgmt_shown; on the broker run: rabbitmq-plugins enable ${PLUGINS[*]} (or set CARGO_MANAGEMENT_URL)") ;;
        401) missing+=("the management API at $mgmt_shown rejects user '$(urldecode "$user")' (HTTP 401); fix the credentials in RABBITMQ_URL/CARGO_MANAGEMENT_URL or give the user the 'management' tag") ;;
        *) missing+=("the management API at $mgmt_shown answered HTTP $status") ;;
    esac
    if [[ "$status" == 200 ]]; then
        vstatus="$(http_status "$mgmt/api/vhosts/$(urlencode_vhost "$vhost")")"
        [[ "$vstatus" == 200 ]] ||
            missing+=("vhost '$vhost' does not exist (HTTP $vstatus); on the broker run: rabbitmqctl add_vhost '$vhost' && rabbitmqctl set_permissions -p '$vhost' '$(urldecode "$user")' '.*' '.*' '.*'")
    fi
    if ((${#missing[@]})); then
        for problem in "${missing[@]}"; do say "missing: $problem"; done
        die "remote RabbitMQ at $tcp_host:$port is not usable (see above); this script does not change remote brokers"
    fi
    [[ "$(http_status "$prometheus")" == 200 ]] ||
        warn "no Prometheus endpoint at $prometheus (enable rabbitmq_prometheus on the broker for metrics and KEDA dashboards; tests do not need it)"
    ok "remote RabbitMQ is reachable: AMQP $tcp_host:$port, management $mgmt_shown, vhost '$vhost'"
    exit 0
fi

# --- local: start if needed ----------------------------------------------------------
if amqp_answers; then
    say "AMQP port $tcp_host:$port answers"
else
    if [[ -z "$server" ]]; then
        die "nothing answers on $tcp_host:$port and RabbitMQ is not installed.
  Install it (RabbitMQ >= 3.10 with Erlang), then re-run this script:
    Debian/Ubuntu:  sudo apt-get install -y rabbitmq-server
    macOS:          brew install rabbitmq
  or point RABBITMQ_URL (and CARGO_MANAGEMENT_URL) at a running broker."
    fi
    allowed "$server" || die "nothing answers on $tcp_host:$port and this user ($(id -un)) may not start RabbitMQ.
  Start it yourself:  sudo rabbitmq-server -detached   (or: sudo systemctl start rabbitmq-server)
  then re-run this script."
    if can_admin && "$ctl" -q ping >/dev/null 2>&1; then
        die "a RabbitMQ node is running, but nothing answers on $tcp_host:$port.
  Is RABBITMQ_URL's port the node's AMQP listener? (rabbitmq-diagnostics listeners)"
    fi
    say "nothing answers on $tcp_host:$port; starting RabbitMQ: $server -detached"
    "$server" -detached >/dev/null 2>&1 || true   # it reports failure by never answering
fi

if can_admin; then
    node_booted || say "waiting for the node to boot (rabbitmqctl await_startup, up to ${WAIT}s) ..."
    wait_until "$WAIT" node_booted ||
        die "RabbitMQ did not finish booting within ${WAIT}s.
  Check: rabbitmqctl status; logs under /var/log/rabbitmq/ (or \$RABBITMQ_LOG_BASE)."
fi
wait_until "$WAIT" amqp_answers ||
    die "RabbitMQ is up but nothing answers on $tcp_host:$port within ${WAIT}s; is RABBITMQ_URL's port the node's AMQP listener?"
ok "RabbitMQ node is up (AMQP $tcp_host:$port)"

# --- local: plugins ------------------------------------------------------------------
if allowed "$plugins_tool"; then
    if ! out="$("$plugins_tool" enable "${PLUGINS[@]}" 2>&1)"; then
        printf '%s\n' "$out" >&2
        die "rabbitmq-plugins enable ${PLUGINS[*]} failed (output above)"
    fi
    if grep -q 'unchanged' <<<"$out"; then
        say "plugins already enabled: ${PLUGINS[*]}"
    else
        ok "plugins enabled: ${PLUGINS[*]}"
    fi
elif ! mgmt_answers; then
    die "the management API does not answer at $mgmt_shown and this user ($(id -un)) may not enable plugins.
  Run:  sudo rabbitmq-plugins enable ${PLUGINS[*]}
  then re-run this script."
fi

mgmt_answers || say "waiting for the management API at $mgmt_shown (up to ${WAIT}s) ..."
wait_until "$WAIT" mgmt_answers ||
    die "the management API did not answer at $mgmt_shown within ${WAIT}s (is rabbitmq_management enabled and listening on that port?)"
status="$(http_status "$mgmt/api/overview")"
case "$status" in
    200) ;;
    401) die "the management API at $mgmt_shown rejects these credentials (HTTP 401): fix RABBITMQ_URL/CARGO_MANAGEMENT_URL, or give the user the administrator tag: rabbitmqctl set_user_tags '$(urldecode "$user")' administrator" ;;
    *) die "the management API at $mgmt_shown answered HTTP $status" ;;
esac

# --- local: the vhost -----------------------------------------------------------------
vpath="$(urlencode_vhost "$vhost")"
if [[ "$(http_status "$mgmt/api/vhosts/$vpath")" != 200 ]]; then
    say "creating vhost '$vhost' for user '$(urldecode "$user")'"
    [[ "$(http_put "$mgmt/api/vhosts/$vpath" '{}')" =~ ^20[14]$ ]] &&
        [[ "$(http_put "$mgmt/api/permissions/$vpath/$(urlencode_vhost "$(urldecode "$user")")" \
            '{"configure":".*","write":".*","read":".*"}')" =~ ^20[14]$ ]] ||
        die "could not create vhost '$vhost' through $mgmt_shown; run: rabbitmqctl add_vhost '$vhost' && rabbitmqctl set_permissions -p '$vhost' '$(urldecode "$user")' '.*' '.*' '.*'"
fi

[[ "$(http_status "$prometheus")" == 200 ]] ||
    warn "no Prometheus endpoint at $prometheus yet (rabbitmq_prometheus); tests do not need it"
ok "RabbitMQ ready: AMQP $tcp_host:$port vhost '$vhost', management $mgmt_shown (UI: $mgmt_ui)"
