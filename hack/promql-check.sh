#!/usr/bin/env bash
# Builds (or reuses from a cache) hack/promql-check, a tiny Go program that parses PromQL with
# Prometheus' own parser, from the Go module proxy only; prints the binary's path (last line).
# Pin: hack/promql-check/go.mod + go.sum. Cache: $HOME/.cache/aivenator/promql-check/<hash>.
set -euo pipefail
HACK=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=$HACK/promql-check
die() { echo "promql-check.sh: error: $*" >&2; exit 1; }
if ! command -v go >/dev/null 2>&1; then
  [[ -x /usr/local/go/bin/go ]] && PATH=$PATH:/usr/local/go/bin
fi
command -v go >/dev/null 2>&1 || die "the 'go' command is not on PATH"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=readonly
KEY=$( { cat "$SRC/go.mod" "$SRC/go.sum" "$SRC/main.go"; go env GOVERSION GOOS GOARCH; } | sha256sum | cut -c1-16)
ROOT=${AIVENATOR_PROMQL_CHECK_CACHE:-$HOME/.cache/aivenator/promql-check}
BIN=$ROOT/$KEY/promql-check
if [[ ! -x $BIN ]]; then
  mkdir -p "$ROOT/$KEY"
  echo "promql-check.sh: building (about a minute cold)" >&2
  ( cd "$SRC" && go build -trimpath -ldflags "-s -w" -o "$BIN.tmp" . ) >&2 || die "go build failed"
  mv "$BIN.tmp" "$BIN"
fi
echo "$BIN"
