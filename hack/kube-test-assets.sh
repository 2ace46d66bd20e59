#!/usr/bin/env bash
# Builds (or reuses from a cache) the kube-apiserver and etcd binaries used by
# the real-apiserver test tier, from the Go module proxy only (no other
# downloads). The last line on stdout is the directory holding both binaries.
#
# Pins live in the tools modules hack/kube-tools/apiserver and
# hack/kube-tools/etcd (go.mod + go.sum; regenerate with hack/kube-tools/pin.sh).
#
# Cache: ${AIVENATOR_KUBE_ASSETS:-$HOME/.cache/aivenator/kube-assets}/<hash>,
# where <hash> covers both tools modules' go.mod/go.sum, this script and the
# Go version. A finished cache entry is reused instantly.
#
# Environment:
#   AIVENATOR_KUBE_ASSETS  cache root (default $HOME/.cache/aivenator/kube-assets)
#   AIVENATOR_KUBE_ASSETS_REBUILD=1  ignore an existing cache entry
set -euo pipefail

die() { echo "kube-test-assets: error: $*" >&2; exit 1; }
log() { echo "kube-test-assets: $*" >&2; }

HACK=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOOLS=$HACK/kube-tools
API_MOD=$TOOLS/apiserver
ETCD_MOD=$TOOLS/etcd

command -v go >/dev/null 2>&1 || die "the 'go' command is not on PATH (Go >= 1.26 is needed to build kube-apiserver and etcd)"
for f in "$API_MOD/go.mod" "$API_MOD/go.sum" "$ETCD_MOD/go.mod" "$ETCD_MOD/go.sum"; do
  [[ -f $f ]] || die "missing $f (run hack/kube-tools/pin.sh)"
done

export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=readonly

GO_VERSION=$(go env GOVERSION)
HASH=$( { cat "$API_MOD/go.mod" "$API_MOD/go.sum" "$ETCD_MOD/go.mod" "$ETCD_MOD/go.sum" \
            "${BASH_SOURCE[0]}"; echo "$GO_VERSION $(go env GOOS)/$(go env GOARCH)"; } \
        | sha256sum | cut -c1-16)
ROOT=${AIVENATOR_KUBE_ASSETS:-$HOME/.cache/aivenator/kube-assets}
OUT=$ROOT/$HASH

if [[ ${AIVENATOR_KUBE_ASSETS_REBUILD:-0} != 1 && -x $OUT/kube-apiserver && -x $OUT/etcd && -f $OUT/.complete ]]; then
  log "reusing cached binaries in $OUT"
  echo "$OUT"
  exit 0
fi

# version of a required module, read from a tools go.mod
modver() {
  sed -n "s|^[[:space:]]*\(require[[:space:]]\+\)\?$2 \(v[^[:space:]]*\).*$|\2|p" "$1" | head -n1
}
K8S_VERSION=$(modver "$API_MOD/go.mod" k8s.io/kubernetes)
ETCD_VERSION=$(modver "$ETCD_MOD/go.mod" go.etcd.io/etcd/server/v3)
[[ $K8S_VERSION =~ ^v1\.([0-9]+)\.[0-9]+$ ]] || die "cannot read k8s.io/kubernetes version from $API_MOD/go.mod"
K8S_MINOR=${BASH_REMATCH[1]}
[[ $ETCD_VERSION =~ ^v3\.[0-9]+\.[0-9]+$ ]] || die "cannot read go.etcd.io/etcd/server/v3 version from $ETCD_MOD/go.mod"

mkdir -p "$ROOT" || die "cannot create cache root $ROOT"
# serialise concurrent builds of the same entry
exec 9>"$ROOT/.lock-$HASH"
if ! flock -w 3600 9; then die "timed out waiting for another build of $OUT"; fi
if [[ ${AIVENATOR_KUBE_ASSETS_REBUILD:-0} != 1 && -x $OUT/kube-apiserver && -x $OUT/etcd && -f $OUT/.complete ]]; then
  log "reusing binaries built concurrently in $OUT"
  echo "$OUT"
  exit 0
fi

STAGE=$(mktemp -d "$ROOT/.build-$HASH.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT

K8S_LDFLAGS="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  K8S_LDFLAGS+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$K8S_MINOR"
  K8S_LDFLAGS+=" -X $pkg.gitTreeState=clean"
done
ETCD_LDFLAGS="-s -w"

start=$(date +%s)
log "building kube-apiserver $K8S_VERSION and etcd $ETCD_VERSION with $GO_VERSION (cold builds take 10-25 min on 2 cores)"

log "building etcd $ETCD_VERSION"
( cd "$ETCD_MOD" && go build -trimpath -pgo=off -ldflags "$ETCD_LDFLAGS" \
    -o "$STAGE/etcd" go.etcd.io/etcd/server/v3 ) >&2 \
  || die "go build of etcd $ETCD_VERSION failed (see output above)"
t_etcd=$(date +%s)
log "etcd built in $((t_etcd - start)) s"

log "building kube-apiserver $K8S_VERSION"
( cd "$API_MOD" && go build -trimpath -pgo=off -ldflags "$K8S_LDFLAGS" \
    -o "$STAGE/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver ) >&2 \
  || die "go build of kube-apiserver $K8S_VERSION failed (see output above)"
t_api=$(date +%s)
log "kube-apiserver built in $((t_api - t_etcd)) s"

# sanity check the results before publishing them
got=$("$STAGE/kube-apiserver" --version 2>&1) || die "built kube-apiserver does not run: $got"
[[ $got == *"$K8S_VERSION"* ]] || die "built kube-apiserver reports '$got', expected $K8S_VERSION"
got=$("$STAGE/etcd" --version 2>&1) || die "built etcd does not run: $got"
[[ $got == *"${ETCD_VERSION#v}"* ]] || die "built etcd reports '$got', expected $ETCD_VERSION"

{
  echo "kubernetes=$K8S_VERSION"
  echo "etcd=$ETCD_VERSION"
  echo "go=$GO_VERSION"
  echo "build_seconds=$((t_api - start))"
} > "$STAGE/.complete"
rm -rf "$OUT"
mv "$STAGE" "$OUT" || die "cannot move build into $OUT"
trap - EXIT
log "built in $((t_api - start)) s into $OUT"
echo "$OUT"
