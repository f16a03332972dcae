#!/usr/bin/env bash
# Fails when the checked-in generated files are not what `make generate` produces:
# it regenerates them and compares their contents before and after.
set -euo pipefail
cd "$(dirname "$0")/.."
generated() { find . -path ./tools/speclint/node_modules -prune -o \( -name '*.gen.go' -o -name '*.gen.yaml' -o -name '*.gen.d.ts' -o -path ./spec/openapi.yaml \) -type f -print | sort; }
snapshot() { generated | while read -r f; do sha256sum "$f"; done; }
before=$(snapshot)
go generate ./...
after=$(snapshot)
if [ "$before" != "$after" ]; then
  echo "checkgen: generated files were out of date with their sources; they are regenerated now:" >&2
  diff <(echo "$before") <(echo "$after") | grep '^[<>]' | awk '{print "  " $3}' | sort -u >&2
  echo "checkgen: review the change and commit it" >&2
  exit 1
fi
echo "checkgen: generated files are up to date"
