#!/usr/bin/env bash
# "Dry build" of the container image without a container engine: the same steps the Dockerfile
# runs, on this machine. Builds the aivenator wheel, installs it with the runtime lock
# (binary wheels only, each checked against its locked sha256, no dependency resolution) into a fresh virtualenv, makes that venv
# read-only (the pod runs with a read-only root filesystem), and runs the entrypoint:
#   aivenator --help, aivenator run --help (every operator flag present), and a start without
#   a token, which must fail with a configuration error and no traceback.
# Also lints the Dockerfile with hadolint (from PyPI, pinned) and checks requirements.lock is
# current. Exit 0 only if everything passed.
#
# Environment:
#   AIVENATOR_DRY_BUILD_DIR   keep the build here instead of a temporary directory
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
VENV_PY=${VENV:-.venv}/bin/python
die() { echo "dry-build: FAIL: $*" >&2; exit 1; }
log() { echo "dry-build: $*" >&2; }

[[ -x $VENV_PY ]] || die "$VENV_PY missing (run make install)"
# shellcheck source=hack/tools-venv.sh
source "$ROOT/hack/tools-venv.sh"

log "hadolint Dockerfile"
"$TOOLS_VENV/bin/hadolint" Dockerfile || die "hadolint found problems in Dockerfile"

log "requirements.lock is the runtime closure of the project venv"
"$VENV_PY" hack/runtime-lock.py --check || die "requirements.lock is stale: run $VENV_PY hack/runtime-lock.py"

WORK=${AIVENATOR_DRY_BUILD_DIR:-$(mktemp -d)}
if [[ -z ${AIVENATOR_DRY_BUILD_DIR:-} ]]; then trap 'chmod -R u+w "$WORK" 2>/dev/null; rm -rf "$WORK"' EXIT; fi
mkdir -p "$WORK"
BASE_PY=$("$VENV_PY" -c 'import sys; print(sys._base_executable)')

log "building the wheel"
"$VENV_PY" -m pip wheel -q --no-deps --wheel-dir "$WORK/wheels" . >&2 || die "pip wheel failed"
WHEEL=$(ls "$WORK"/wheels/aivenator-*.whl)
"$VENV_PY" - "$WHEEL" <<'PY' || die "wheel content is wrong"
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith((".dist-info", ".data"))}
want = {"aivenator"}
assert want <= tops, f"missing packages: {want - tops}"
assert not tops - want, f"unexpected top-level entries in the wheel: {sorted(tops - want)}"
assert not any("/tests/" in n or n.startswith("tests/") for n in names), "tests are in the wheel"
entry = next(n for n in names if n.endswith("entry_points.txt"))
text = zipfile.ZipFile(sys.argv[1]).read(entry).decode()
assert "aivenator = aivenator.entrypoints.cli.main:main" in text, text
PY

log "fresh venv with the runtime lock (binary wheels only)"
"$BASE_PY" -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install -q --disable-pip-version-check --require-hashes --only-binary=:all: --no-deps -r requirements.lock >&2 \
  || die "installing requirements.lock failed"
"$WORK/venv/bin/pip" install -q --disable-pip-version-check --no-deps "$WHEEL" >&2 || die "installing the wheel failed"
"$WORK/venv/bin/pip" check >&2 || die "pip check: the lock does not satisfy the wheel's requirements"
extra=$(comm -13 <(grep -E '^[A-Za-z0-9]' requirements.lock | cut -d= -f1 | tr 'A-Z_' 'a-z-' | sort) \
               <("$WORK/venv/bin/pip" list --format=freeze | cut -d= -f1 | tr 'A-Z_' 'a-z-' | grep -vx 'pip\|setuptools\|aivenator' | sort))
[[ -z $extra ]] || die "installed but not in requirements.lock: $extra"

chmod -R a-w "$WORK/venv"
export PYTHONDONTWRITEBYTECODE=1
cd "$WORK"   # nothing from the source tree on sys.path
BIN=$WORK/venv/bin/aivenator

log "aivenator --help"
"$BIN" --help > help.txt || die "aivenator --help failed"
for cmd in run demo audit; do grep -q "$cmd" help.txt || die "aivenator --help does not list '$cmd'"; done

log "every module of the installed packages imports"
"$WORK/venv/bin/python" - <<'PY' || die "a module does not import from the installed wheel"
import importlib, pkgutil, sys
failed = []
for gone in ("domain", "adapters", "entrypoints"):
    try:
        importlib.import_module(gone)
    except ModuleNotFoundError:
        pass
    else:
        failed.append(f"the wheel installs a top-level {gone!r} package")
for top in ("aivenator",):
    pkg = importlib.import_module(top)
    assert "site-packages" in pkg.__file__, pkg.__file__
    for info in pkgutil.walk_packages(pkg.__path__, top + "."):
        try:
            importlib.import_module(info.name)
        except Exception as exc:  # report every failure, not just the first
            failed.append(f"{info.name}: {type(exc).__name__}: {exc}")
if failed:
    print("\n".join(failed), file=sys.stderr)
    sys.exit(1)
PY

log "aivenator run --help"
"$BIN" run --help > run-help.txt || die "aivenator run --help failed"
for flag in --aiven-token-file --aiven-api-url --projects --main-project --leader-elect \
            --metrics-address --health-probe-address --workers --janitor-interval; do
  grep -q -- "$flag" run-help.txt || die "aivenator run --help does not document $flag"
done

log "aivenator run without a token fails cleanly"
set +e
env -u AIVENATOR_AIVEN_TOKEN -u AIVENATOR_AIVEN_TOKEN_FILE timeout 60 "$BIN" run > run.out 2> run.err
rc=$?
set -e
[[ $rc -ne 0 && $rc -ne 124 ]] || die "aivenator run without a token exited $rc (want a configuration error)"
if grep -q Traceback run.err; then cat run.err >&2; die "aivenator run without a token printed a traceback"; fi
grep -qi "token" run.err || { cat run.err >&2; die "aivenator run without a token does not say the token is missing"; }

log "aivenator audit --help, and audit without a cluster fails cleanly"
"$BIN" audit --help > audit-help.txt || die "aivenator audit --help failed"
grep -q -- "--fake-aiven" audit-help.txt || die "aivenator audit --help does not document --fake-aiven"
set +e
env -u KUBERNETES_SERVICE_HOST KUBECONFIG="$WORK/no-such-kubeconfig" timeout 60 "$BIN" audit --fake-aiven --quiet > audit.out 2> audit.err
rc=$?
set -e
[[ $rc -eq 2 ]] || { cat audit.err >&2; die "aivenator audit without a cluster exited $rc (want 2)"; }
if grep -q Traceback audit.err; then cat audit.err >&2; die "aivenator audit without a cluster printed a traceback"; fi

log "OK: wheel $(basename "$WHEEL") installs from requirements.lock and its entrypoint runs"
