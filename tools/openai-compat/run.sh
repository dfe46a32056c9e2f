#!/usr/bin/env bash
# Checks the gateway's OpenAI-compatible API with the official `openai` npm client (check.mjs).
#   tools/openai-compat/run.sh                 starts an embedded gateway (random model) on port 18080, checks, stops it
#   tools/openai-compat/run.sh URL             checks a running gateway, e.g. http://127.0.0.1:8080/v1
# Needs node >= 18 and npm; the client version is pinned by package-lock.json (npm ci).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
(cd "$here" && npm ci --no-audit --no-fund --silent)
if [ $# -ge 1 ]; then
  exec node "$here/check.mjs" "$1"
fi
run="$(mktemp -d)"
port="${OPENAI_COMPAT_PORT:-18080}"
trap '"$root/kimi-mesh" down --run-dir "$run" >/dev/null; rm -rf "$run"' EXIT
"$root/kimi-mesh" up --embedded --detach --port "$port" --run-dir "$run"
node "$here/check.mjs" "http://127.0.0.1:$port/v1"
