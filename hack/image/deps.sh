#!/usr/bin/env bash
# Installs the Debian packages `make image` and `make image-smoke` use, if missing:
# mmdebstrap (root filesystem from Debian's packages), umoci (OCI layout), skopeo (docker-archive),
# runc (runs the image; Debian's crun 1.8 refuses hybrid cgroup hosts), debian-archive-keyring
# (verifies the bookworm mirror). Non-interactive; needs root and `apt-get update` to work.
set -euo pipefail
declare -A tool_of=([mmdebstrap]=mmdebstrap [umoci]=umoci [skopeo]=skopeo [runc]=runc)
need=()
for package in "${!tool_of[@]}"; do
  command -v "${tool_of[$package]}" > /dev/null || need+=("$package")
done
[[ -f /usr/share/keyrings/debian-archive-keyring.gpg ]] || need+=(debian-archive-keyring)
if [[ ${#need[@]} -eq 0 ]]; then exit 0; fi
[[ $(id -u) -eq 0 ]] || { echo "image-deps: run as root to install: ${need[*]}" >&2; exit 1; }
echo "image-deps: apt-get install ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq < /dev/null > /dev/null
apt-get install -y -qq --no-install-recommends "${need[@]}" < /dev/null > /dev/null
