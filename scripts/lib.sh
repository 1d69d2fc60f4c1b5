# Shared helpers for Cargo's scripts. Source it; do not run it.
# shellcheck shell=bash

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck disable=SC2034  # used by the scripts that source this file
VENV="$REPO_ROOT/.venv"

if [[ -t 1 && -z "${NO_COLOR:-}" ]]; then
    _bold=$'\e[1m' _red=$'\e[31m' _green=$'\e[32m' _yellow=$'\e[33m' _reset=$'\e[0m'
else
    _bold="" _red="" _green="" _yellow="" _reset=""
fi

# Messages go to stderr so that scripts can be composed; the prefix names the script.
say()  { printf '%s[%s]%s %s\n' "$_bold" "${SCRIPT_NAME:-cargo}" "$_reset" "$*" >&2; }
ok()   { printf '%s[%s]%s %s%s%s\n' "$_bold" "${SCRIPT_NAME:-cargo}" "$_reset" "$_green" "$*" "$_reset" >&2; }
warn() { printf '%s[%s]%s %swarning:%s %s\n' "$_bold" "${SCRIPT_NAME:-cargo}" "$_reset" "$_yellow" "$_reset" "$*" >&2; }
die()  { printf '%s[%s]%s %serror:%s %s\n' "$_bold" "${SCRIPT_NAME:-cargo}" "$_reset" "$_red" "$_reset" "$*" >&2; exit 1; }

# The URL with its password replaced by ***, for messages.
redact_url() { sed -E 's#(://[^:/@]*):[^@/]*@#\1:***@#' <<<"$1"; }
