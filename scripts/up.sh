#!/usr/bin/env bash
# The main job: `pulumi up` of examples/basic (the repository's Pulumi.yaml points at it) on a
# local file backend and the embedded engine.
#
#   npm run up                 pulumi up --yes          (builds what is missing first)
#   npm run preview            pulumi preview
#   npm run refresh            pulumi refresh --yes
#   npm run destroy            pulumi destroy --yes
#   npm run pulumi -- ARGS     any pulumi command on the same stack, e.g.
#                              npm run pulumi -- config set dataSizeGb 30
#                              npm run pulumi -- stack output --json
#   npm run up -- ARGS         extra pulumi flags, e.g. npm run up -- --diff
#
# What it does, each step skipped when already done:
#   1. the Pulumi CLI: npm run pulumi:install (builds it from Go sources into .tools/pulumi/bin
#      the first time, ~4 min on 2 cores; afterwards a ~1 s check),
#   2. the package: npm run build when dist/ or the node_modules/pulumi-encdisk link is missing,
#   3. the backend: file://.tools/pulumi-state (git-ignored; no account, no network), with
#      stack `dev` created on first use. The stack's config file (encryption salt, your
#      `config set` values) lives there too, as .tools/pulumi-state/Pulumi.<stack>.yaml, so the
#      working tree stays clean.
# The engine directory is the provider's default: $ENCDISK_DIR, else ~/.encdisk (or stack
# config encdisk:engineDir: npm run pulumi -- config set encdisk:engineDir /some/dir).
#
# Environment: ENCDISK_PULUMI_STATE_DIR (default .tools/pulumi-state), ENCDISK_STACK (default
# dev), PULUMI_CONFIG_PASSPHRASE (default: the fixed local value of scripts/pulumi-env.sh;
# keep using the same one for a stack).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
say() { printf '[encdisk-up] %s\n' "$*" >&2; }
die() { printf '[encdisk-up] ERROR: %s\n' "$*" >&2; exit 1; }

cmd="${1:-up}"
[ $# -gt 0 ] && shift

# 1. The CLI (idempotent and quick when present; the first build shows its progress).
bash scripts/pulumi-install.sh >&2 || die "could not install the Pulumi CLI (see above)"

# 2. The package the example requires by name.
if [ ! -f dist/provider/index.js ] || [ ! -e node_modules/pulumi-encdisk/package.json ]; then
    [ -d node_modules ] || die "node_modules is missing: run npm ci first"
    say "building the package (npm run build)"
    npm run --silent build >&2
fi

# 3. Backend, stack and its config file.
STATE="${ENCDISK_PULUMI_STATE_DIR:-$ROOT/.tools/pulumi-state}"
STACK="${ENCDISK_STACK:-dev}"
mkdir -p "$STATE"
# shellcheck source=pulumi-env.sh
source "$ROOT/scripts/pulumi-env.sh" "$STATE" 2>/dev/null
CONFIG_FILE="$STATE/Pulumi.$STACK.yaml"
if ! pulumi stack ls --json 2>/dev/null | node -e '
    const want = process.argv[1]; let s = "";
    process.stdin.on("data", (d) => (s += d)).on("end", () => process.exit(JSON.parse(s || "[]").some((x) => x.name === want) ? 0 : 1));
  ' "$STACK"; then
    say "creating stack $STACK (backend $PULUMI_BACKEND_URL)"
    [ -e "$ROOT/Pulumi.$STACK.yaml" ] && had_root_file=1 || had_root_file=0
    pulumi stack init "$STACK" --non-interactive >&2
    # stack init writes the stack file (with its encryption salt) next to Pulumi.yaml: keep it
    # with the state instead, unless it was there before.
    if [ "$had_root_file" = 0 ] && [ -f "$ROOT/Pulumi.$STACK.yaml" ]; then
        mv -f "$ROOT/Pulumi.$STACK.yaml" "$CONFIG_FILE"
    fi
fi
[ -f "$CONFIG_FILE" ] || : >"$CONFIG_FILE"

S=(--stack "$STACK" --non-interactive)
C=(--config-file "$CONFIG_FILE")
engine_dir="${ENCDISK_DIR:-$HOME/.encdisk}"

case "$cmd" in
    up)
        say "pulumi up of examples/basic: stack $STACK, state $STATE, engine ${engine_dir}"
        exec pulumi up --yes "${S[@]}" "${C[@]}" "$@" ;;
    preview)  exec pulumi preview "${S[@]}" "${C[@]}" "$@" ;;
    refresh)  exec pulumi refresh --yes "${S[@]}" "${C[@]}" "$@" ;;
    destroy)  exec pulumi destroy --yes "${S[@]}" "${C[@]}" "$@" ;;
    pulumi)
        [ $# -gt 0 ] || die "usage: npm run pulumi -- COMMAND [ARGS] (e.g. config set dataSizeGb 30)"
        # Commands that read or write stack config take the config file; the rest only the stack.
        case "$1" in
            config|up|update|preview|refresh|destroy|import|watch) exec pulumi "$@" "${S[@]}" "${C[@]}" ;;
            stack|state|cancel) exec pulumi "$@" "${S[@]}" ;;
            *) exec pulumi "$@" ;;
        esac ;;
    *) die "unknown command $cmd (up, preview, refresh, destroy, pulumi)" ;;
esac
