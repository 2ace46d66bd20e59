#!/usr/bin/env bash
# Builds (or reuses from a cache) the `helm` CLI from the Go module proxy only and prints the
# path of the binary as the last line on stdout. No download sites are used: this machine (and
# CI) reach the Go module proxy but not get.helm.sh.
#
# Pin: HELM_VERSION below. Bump it deliberately; the cache key includes it and the Go version.
#
# Environment:
#   AIVENATOR_HELM_CACHE   cache root (default $HOME/.cache/aivenator/helm)
#   AIVENATOR_HELM         use this helm binary instead of building one (must be Helm 3)
set -euo pipefail

HELM_VERSION=v3.21.4

die() { echo "helm.sh: error: $*" >&2; exit 1; }
log() { echo "helm.sh: $*" >&2; }

if [[ -n ${AIVENATOR_HELM:-} ]]; then
  [[ -x $AIVENATOR_HELM ]] || die "AIVENATOR_HELM=$AIVENATOR_HELM is not executable"
  echo "$AIVENATOR_HELM"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  [[ -x /usr/local/go/bin/go ]] && PATH=$PATH:/usr/local/go/bin
fi
command -v go >/dev/null 2>&1 || die "the 'go' command is not on PATH (needed to build helm $HELM_VERSION)"

export GOTOOLCHAIN=local CGO_ENABLED=0
GO_VERSION=$(go env GOVERSION)
KEY=$(printf '%s %s %s/%s\n' "$HELM_VERSION" "$GO_VERSION" "$(go env GOOS)" "$(go env GOARCH)" | sha256sum | cut -c1-12)
ROOT=${AIVENATOR_HELM_CACHE:-$HOME/.cache/aivenator/helm}
OUT=$ROOT/$HELM_VERSION-$KEY
BIN=$OUT/helm

if [[ -x $BIN && -f $OUT/.complete ]]; then
  echo "$BIN"
  exit 0
fi

mkdir -p "$ROOT"
exec 9>"$ROOT/.lock-$KEY"
flock -w 1800 9 || die "timed out waiting for another build of $OUT"
if [[ -x $BIN && -f $OUT/.complete ]]; then
  echo "$BIN"
  exit 0
fi

STAGE=$(mktemp -d "$ROOT/.build-$KEY.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
log "building helm $HELM_VERSION with $GO_VERSION from the Go module proxy (a few minutes cold)"
start=$(date +%s)
# `go install` honours the module's own go.mod (no replace directives in helm v3), so the
# dependency set is exactly the one the Helm release pinned. The version stamp makes
# `helm version` report the pinned release instead of "v3.x-dev".
GOBIN=$STAGE go install -trimpath \
  -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
  "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >&2 || die "go install helm.sh/helm/v3/cmd/helm@$HELM_VERSION failed"
[[ -x $STAGE/helm ]] || die "build produced no helm binary"
"$STAGE/helm" version --short >&2 || die "built helm does not run"
rm -rf "$OUT"
mkdir -p "$OUT"
mv "$STAGE/helm" "$BIN"
touch "$OUT/.complete"
log "helm $HELM_VERSION ready in $(( $(date +%s) - start ))s"
echo "$BIN"
