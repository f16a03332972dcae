#!/usr/bin/env bash
# Installs Redis 7 (Debian's redis-server) for the tests of the Redis session store, which
# start and stop their own servers on free ports (reference/server/redistest). Does
# nothing when redis-server is there already.
set -euo pipefail
command -v redis-server >/dev/null && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "redis: install redis-server (as root, with apt-get) to run the tests of the Redis store" >&2
  exit 2
fi
echo "redis: installing redis-server from Debian's packages" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >/dev/null
# The package starts a system-wide server on port 6379; the tests start their own.
systemctl disable --now redis-server >/dev/null 2>&1 || service redis-server stop >/dev/null 2>&1 || true
