#!/usr/bin/env bash
# Type-checks the JavaScript client's declarations (reference/web/agentws.d.ts and the
# generated messages.gen.d.ts) with the TypeScript compiler pinned in package-lock.json,
# on usage.ts (tsconfig.json); and agentws.js, node.mjs, ask.mjs and the Node tests
# with checkJs, which checks their uses of the client against agentws.d.ts
# (tsconfig.js.json). Installs the package's dependencies
# when missing. Run from anywhere; `make typecheck` calls it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
if ! command -v npm >/dev/null; then
  echo "typecheck: Node.js and npm are needed (make lint-spec installs them from Debian's packages)" >&2
  exit 2
fi
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
node_modules/.bin/tsc -p tsconfig.json
node_modules/.bin/tsc -p tsconfig.js.json
