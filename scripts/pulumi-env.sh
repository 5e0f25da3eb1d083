# Source this file to run the Pulumi CLI from .tools/pulumi/bin fully offline,
# with a local file backend:
#
#   source scripts/pulumi-env.sh [STATE_DIR]          (bash, zsh)
#   PULUMI_STATE_DIR=DIR . scripts/pulumi-env.sh       (POSIX sh: no arguments
#                                                        when sourcing; run it
#                                                        from inside the repo)
#
# STATE_DIR (default: $PULUMI_STATE_DIR, else a new temp dir) holds the stack
# state (the backend is file://STATE_DIR) and, unless PULUMI_HOME is already
# set by the caller, the Pulumi home (STATE_DIR/home: plugins, credentials,
# workspace files), so nothing touches ~/.pulumi. Install the CLI first: npm run pulumi:install.
#
# Exports: PATH (with .tools/pulumi/bin first), PULUMI_HOME, PULUMI_BACKEND_URL,
# PULUMI_CONFIG_PASSPHRASE (kept if set; else a fixed test value),
# PULUMI_SKIP_UPDATE_CHECK, PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION,
# PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK, PULUMI_SKIP_CONFIRMATIONS,
# PULUMI_STATE_DIR. Sourcing it twice is harmless (PATH is not duplicated).

if [ -n "${BASH_SOURCE:-}" ]; then
    _pe_here="${BASH_SOURCE[0]}"
elif [ -n "${ZSH_VERSION:-}" ]; then
    _pe_here="${(%):-%x}"
else
    _pe_here="$0"
fi
_pe_root="$(cd "$(dirname "$_pe_here")/.." 2>/dev/null && pwd)"
# POSIX sh (dash) cannot tell a sourced file its own path: fall back to the git
# work tree of the current directory.
if [ ! -f "$_pe_root/scripts/pulumi-env.sh" ]; then
    _pe_root="$(git rev-parse --show-toplevel 2>/dev/null || pwd)"
fi
_pe_bin="$_pe_root/.tools/pulumi/bin"

_pe_prev_state="${PULUMI_STATE_DIR:-}"
_pe_state="${1:-${PULUMI_STATE_DIR:-}}"
if [ -z "$_pe_state" ]; then
    _pe_state="$(mktemp -d "${TMPDIR:-/tmp}/pulumi-state.XXXXXX")"
fi
mkdir -p "$_pe_state"
_pe_state="$(cd "$_pe_state" && pwd)"

case ":$PATH:" in
    *":$_pe_bin:"*) ;;
    *) PATH="$_pe_bin:$PATH" ;;
esac
export PATH

export PULUMI_STATE_DIR="$_pe_state"
export PULUMI_BACKEND_URL="file://$_pe_state"
if [ -z "${PULUMI_HOME:-}" ] || [ "$PULUMI_HOME" = "$_pe_prev_state/home" ]; then
    export PULUMI_HOME="$_pe_state/home"
fi
mkdir -p "$PULUMI_HOME"
# Secrets provider "passphrase" (the default for the file backend) needs this
# set; it may be empty but a fixed value makes the intent explicit.
export PULUMI_CONFIG_PASSPHRASE="${PULUMI_CONFIG_PASSPHRASE-encdisk-local-test}"
export PULUMI_SKIP_UPDATE_CHECK=true
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
export PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK=true
export PULUMI_SKIP_CONFIRMATIONS=true

if [ ! -x "$_pe_bin/pulumi" ] && ! command -v pulumi >/dev/null 2>&1; then
    echo "pulumi-env: no pulumi CLI in $_pe_bin; run: npm run pulumi:install" >&2
fi
echo "pulumi-env: backend $PULUMI_BACKEND_URL, PULUMI_HOME=$PULUMI_HOME" >&2
unset _pe_here _pe_root _pe_bin _pe_state _pe_prev_state
