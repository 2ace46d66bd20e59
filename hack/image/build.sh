#!/usr/bin/env bash
# `make image`: the aivenator container image built from package registries only, with no
# container daemon. Described by hack/image/spec.toml (the Dockerfile describes the same image
# for users with a container engine; `make test` checks they agree).
#
#   1. the aivenator wheel (pip wheel) and the locked wheels (pip download, hash-checked
#      against requirements.lock) for the build machine's architecture;
#   2. mmdebstrap: a Debian bookworm root filesystem of the Essential packages plus the spec's
#      runtime packages (Debian's python3), merged /usr, no docs/man pages/locales (copyright
#      files kept); in hooks: the venv at /opt/aivenator installed offline from those wheels
#      with --require-hashes, pip and setuptools removed from it, the build-only Debian packages
#      purged with dpkg (hack/image/rootfs.py purge-list), the user 65532 added;
#      written as one tarball, sorted by name, mtimes clamped to SOURCE_DATE_EPOCH;
#   3. umoci: that tarball as the single layer of an OCI image layout (out/image/oci), config
#      (user, entrypoint, cmd, env, workdir, ports, labels) and every timestamp from
#      SOURCE_DATE_EPOCH;
#   4. skopeo: a `docker load`-able archive (out/image/aivenator-<version>.docker.tar).
#   5. hack/image/sbom.py: the image's CycloneDX SBOM (out/image/sbom.cdx.json) from its dpkg
#      database and venv, schema-validated.
# Prints the image (manifest) digest and writes it to out/image/digest.
#
# Needs root (mmdebstrap's root mode; no daemon) and `mmdebstrap umoci skopeo` from Debian:
# hack/image/deps.sh installs them. SOURCE_DATE_EPOCH defaults to the last commit's time.
# Environment: AIVENATOR_IMAGE_DIR (default out/image), VENV (default .venv),
# AIVENATOR_IMAGE_MIRROR (default: deb.debian.org, bookworm + updates + security).
set -euo pipefail
{ # read whole before running: editing this file during a build cannot change the running build
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
die() { echo "image: FAIL: $*" >&2; exit 1; }
log() { echo "image: $*" >&2; }

VENV_PY=${VENV:-.venv}/bin/python
[[ -x $VENV_PY ]] || die "$VENV_PY missing (run make install)"
for tool in mmdebstrap umoci skopeo; do
  command -v "$tool" > /dev/null || die "$tool is not installed (bash hack/image/deps.sh installs it from Debian)"
done
[[ $(id -u) -eq 0 ]] || die "run as root (mmdebstrap root mode)"

eval "$(python3 hack/image/spec.py shell)"
VERSION=$(python3 -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')
REVISION=$(git rev-parse HEAD 2>/dev/null || echo unknown)
if [[ -z ${SOURCE_DATE_EPOCH:-} ]]; then
  SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || die "no git history: set SOURCE_DATE_EPOCH")
fi
export SOURCE_DATE_EPOCH
CREATED=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)
OUT=${AIVENATOR_IMAGE_DIR:-out/image}
WORK=$OUT/work
rm -rf "$OUT"
mkdir -p "$WORK/wheels"
started=$(date +%s)

ARCH=$(uname -m)   # the image is built for the build machine's architecture
log "wheels for CPython 3.11 $ARCH: aivenator (built) and requirements.lock (downloaded, hash-checked)"
"$VENV_PY" -m pip wheel -q --disable-pip-version-check --no-deps --wheel-dir "$WORK/wheels" . >&2
platforms=()
for minor in $(seq 17 36); do platforms+=(--platform "manylinux_2_${minor}_${ARCH}"); done
"$VENV_PY" -m pip download -q --disable-pip-version-check --require-hashes --no-deps --only-binary=:all: \
  --python-version 3.11 --implementation cp --abi cp311 --abi abi3 --abi none "${platforms[@]}" \
  --platform "manylinux2014_${ARCH}" -r requirements.lock -d "$WORK/wheels" >&2
cp requirements.lock "$WORK/wheels/requirements.lock"

mirror=${AIVENATOR_IMAGE_MIRROR:-http://deb.debian.org/debian}
security=${AIVENATOR_IMAGE_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
rootfs_py=$ROOT/hack/image/rootfs.py
# Inside the chroot: the venv, offline and hash-checked; no pip/setuptools left; bytecode
# compiled by pip with SOURCE_DATE_EPOCH set, i.e. hash-based .pyc (no timestamps in them).
venv_script="set -eu
python3 -m venv $IMAGE_VENV
$IMAGE_VENV/bin/pip install -q --disable-pip-version-check --no-index --find-links /tmp/wheels \
  --require-hashes --only-binary=:all: --no-deps -r /tmp/wheels/requirements.lock
$IMAGE_VENV/bin/pip install -q --disable-pip-version-check --no-index --no-deps /tmp/wheels/aivenator-*.whl
$IMAGE_VENV/bin/pip check
$IMAGE_VENV/bin/python -m pip uninstall -q -y pip setuptools
rm -rf /tmp/wheels /root/.cache
$IMAGE_VENV/bin/aivenator --help > /dev/null"

log "mmdebstrap: Debian $IMAGE_SUITE, Essential + $IMAGE_PACKAGES (build only: $IMAGE_BUILD_PACKAGES)"
mmdebstrap --mode=root --variant=essential --format=tar \
  --include="$IMAGE_PACKAGES,$IMAGE_BUILD_PACKAGES" \
  --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
  --aptopt='Acquire::Check-Valid-Until "false"' \
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/lintian/*' \
  --customize-hook="copy-in $WORK/wheels /tmp" \
  --customize-hook="chroot \"\$1\" env -i PATH=/usr/bin:/bin SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH sh -c '$venv_script'" \
  --customize-hook="chroot \"\$1\" dpkg --purge \$(python3 '$rootfs_py' purge-list \"\$1\")" \
  --customize-hook="python3 '$rootfs_py' add-user \"\$1\"" \
  --customize-hook='rm -rf "$1"/var/cache/* "$1"/var/log/* "$1"/var/lib/dpkg/*-old "$1"/tmp/* "$1"/root/.cache' \
  --customize-hook='rm -rf "$1"/usr/share/doc/python3-venv "$1"/usr/share/doc/python3.11-venv' \
  --customize-hook=': > "$1/etc/resolv.conf"; echo localhost > "$1/etc/hostname"' \
  "$IMAGE_SUITE" "$WORK/rootfs.tar" \
  "deb $mirror $IMAGE_SUITE main" "deb $mirror $IMAGE_SUITE-updates main" \
  "deb $security $IMAGE_SUITE-security main" 2> "$WORK/mmdebstrap.log" \
  || { tail -30 "$WORK/mmdebstrap.log" >&2; die "mmdebstrap failed (log: $WORK/mmdebstrap.log)"; }

log "umoci: OCI layout $OUT/oci, tag $VERSION"
LAYOUT=$OUT/oci
IMAGE=$LAYOUT:$VERSION
umoci init --layout "$LAYOUT"
umoci new --image "$IMAGE"
umoci raw add-layer --image "$IMAGE" --history.created "$CREATED" \
  --history.created_by "hack/image/build.sh: mmdebstrap $IMAGE_SUITE essential + $IMAGE_PACKAGES, venv $IMAGE_VENV" \
  "$WORK/rootfs.tar"
config_args=(--created "$CREATED" --history.created "$CREATED" --history.created_by "hack/image/build.sh: config"
  --config.user "$IMAGE_UID:$IMAGE_GID" --config.workingdir "$IMAGE_WORKDIR" --clear=config.entrypoint --clear=config.cmd)
for arg in "${IMAGE_ENTRYPOINT[@]}"; do config_args+=(--config.entrypoint "$arg"); done
for arg in "${IMAGE_CMD[@]}"; do config_args+=(--config.cmd "$arg"); done
for kv in "${IMAGE_ENV[@]}"; do config_args+=(--config.env "$kv"); done
for port in "${IMAGE_PORTS[@]}"; do config_args+=(--config.exposedports "$port/tcp"); done
for kv in "${IMAGE_LABELS[@]}" "org.opencontainers.image.version=$VERSION" \
          "org.opencontainers.image.revision=$REVISION" "org.opencontainers.image.created=$CREATED"; do
  config_args+=(--config.label "$kv")
done
umoci config --image "$IMAGE" "${config_args[@]}"
umoci gc --layout "$LAYOUT"

DIGEST=$(python3 - "$LAYOUT" "$VERSION" <<'PY'
import json, sys
index = json.load(open(f"{sys.argv[1]}/index.json"))
found = [m["digest"] for m in index["manifests"]
         if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == sys.argv[2]]
assert len(found) == 1, index
print(found[0])
PY
)
ARCHIVE=$OUT/aivenator-$VERSION.docker.tar
log "skopeo: docker-archive $ARCHIVE"
# Local files in and out, nothing pulled: the signature policy has nothing to verify here.
skopeo --insecure-policy copy -q "oci:$IMAGE" "docker-archive:$ARCHIVE:ghcr.io/aivenator/aivenator:$VERSION"
rm -f "$WORK/rootfs.tar"   # the layer is in the layout; keep only the logs

echo "$DIGEST" > "$OUT/digest"
log "SBOM of the image (CycloneDX, validated): $OUT/sbom.cdx.json"
# shellcheck source=hack/tools-venv.sh
source "$ROOT/hack/tools-venv.sh"
"$TOOLS_VENV/bin/python" hack/image/sbom.py --layout "$LAYOUT" --tag "$VERSION" -o "$OUT/sbom.cdx.json" >&2
python3 - "$LAYOUT" "$DIGEST" "$ARCHIVE" "$(( $(date +%s) - started ))" <<'PY' >&2
import json, os, sys
layout, digest, archive, seconds = sys.argv[1:]
blob = lambda d: os.path.join(layout, "blobs", *d.split(":"))
manifest = json.load(open(blob(digest)))
layers = manifest["layers"]
config = json.load(open(blob(manifest["config"]["digest"])))
print(f"image: {len(layers)} layer(s), {sum(l['size'] for l in layers) / 1e6:.1f} MB compressed; "
      f"docker archive {os.path.getsize(archive) / 1e6:.1f} MB (uncompressed); built in {seconds} s")
print(f"image: config {manifest['config']['digest']} (the image ID after docker load), "
      f"user {config['config']['User']}, entrypoint {config['config']['Entrypoint']}, cmd {config['config']['Cmd']}")
PY
echo "image digest: $DIGEST"
exit 0
}
