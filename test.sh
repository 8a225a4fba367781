#!/usr/bin/env bash
# The test command of the README: every test of every package, with the race detector.
set -euo pipefail
cd "$(dirname "$0")"
exec go test -race -count=1 -timeout 20m ./... "$@"
