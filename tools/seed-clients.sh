#!/usr/bin/env bash
# Installs what the example clients of the original design document need to run in the tests
# (reference/server/seed_process_test.go): Python's websockets module, from Debian's
# python3-websockets, and Node.js. Does nothing when they are there already.
set -euo pipefail
need=()
/usr/bin/python3 -c "import websockets" 2>/dev/null || need+=(python3-websockets)
command -v node >/dev/null || need+=(nodejs)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "seed-clients: install ${need[*]} (as root, with apt-get) to run the original design document's clients" >&2
  exit 2
fi
echo "seed-clients: installing ${need[*]} from Debian's packages" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
