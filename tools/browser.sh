#!/usr/bin/env bash
# Installs Chromium, which the browser tests drive (reference/server/browser_test.go,
# with github.com/chromedp/chromedp), from Debian's chromium package. Does nothing when
# a Chromium is there already.
set -euo pipefail
for name in chromium chromium-browser google-chrome; do
  command -v "$name" >/dev/null && exit 0
done
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "browser: install Chromium (Debian: apt-get install chromium, as root) to run the browser tests" >&2
  exit 2
fi
echo "browser: installing chromium from Debian's packages" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
