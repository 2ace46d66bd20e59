#!/usr/bin/env bash
# CycloneDX SBOM of what the aivenator image runs: the aivenator component (from pyproject.toml)
# and every package in requirements.lock, written to out/sbom.cdx.json and then checked by
# hack/check-sbom.py (well-formed, schema-valid, every locked package present with a purl).
#
# The generator is cyclonedx-bom (`cyclonedx-py requirements`), pinned in hack/tools-venv.sh
# and installed into a separate tools venv on first use. Output is reproducible: the timestamp
# is the last commit's time (SOURCE_DATE_EPOCH) and no random serial number is used.
#
# The Debian packages of the image are not in this SBOM: `make image` writes the SBOM of the image
# itself (hack/image/sbom.py, out/image/sbom.cdx.json; see docs/release.md).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=hack/tools-venv.sh
source "$ROOT/hack/tools-venv.sh"

OUT=${AIVENATOR_SBOM:-out/sbom.cdx.json}
SPEC=${AIVENATOR_SBOM_SPEC:-1.6}
mkdir -p "$(dirname "$OUT")"
if [[ -z ${SOURCE_DATE_EPOCH:-} ]]; then
  SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || date +%s)
  export SOURCE_DATE_EPOCH
fi

"$TOOLS_VENV/bin/cyclonedx-py" requirements requirements.lock \
  --pyproject pyproject.toml --mc-type application \
  --sv "$SPEC" --of JSON --output-reproducible --validate \
  -o "$OUT"
"$TOOLS_VENV/bin/python" hack/check-sbom.py "$OUT" --lock requirements.lock --pyproject pyproject.toml
echo "$OUT"
