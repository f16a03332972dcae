#!/usr/bin/env bash
# Validates spec/asyncapi.yaml and spec/openapi.yaml with the official parsers
# (npm @asyncapi/parser and @apidevtools/swagger-parser). Installs Node.js from
# Debian's packages when it is missing and the package's pinned dependencies
# from package-lock.json. Run from anywhere; `make lint-spec` calls it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "speclint: installing Node.js and npm from Debian's packages" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
  else
    echo "speclint: Node.js 18 or later and npm are needed; install them and run again" >&2
    exit 2
  fi
fi

cd "$here"
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
node lint.mjs "$root/spec/asyncapi.yaml" "$root/spec/openapi.yaml"
