#!/usr/bin/env python3
"""CycloneDX SBOM of the built image, read from the image itself, then checked.

    python hack/image/sbom.py [--layout out/image/oci] [--tag <version>] [-o out/image/sbom.cdx.json]

Reads the image's layers from the OCI layout (what `make image` wrote) and lists:
- every Debian package the image's dpkg database (var/lib/dpkg/status) records as installed,
  as `pkg:deb/debian/<name>@<version>?arch=<arch>&distro=debian-<release>`;
- every Python distribution in the venv's site-packages (`*.dist-info/METADATA`), as
  `pkg:pypi/<name>@<version>`;
with the image itself as the main component (`pkg:oci/aivenator@<manifest digest>`). The
timestamp is the image's `created` (SOURCE_DATE_EPOCH), the serial number is derived from the
digest: the same image gives the same SBOM.

Then checks it (exit 1, one line per problem): valid against the CycloneDX JSON schema
(cyclonedx-python-lib's strict validator, as hack/check-sbom.py does; run this with the tools
venv of hack/tools-venv.sh), every dpkg package and every venv distribution exactly once, the
venv is requirements.lock plus aivenator at the pyproject version and nothing else (no pip, no
setuptools), and every spec runtime package is installed.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import io
import json
import re
import sys
import tarfile
import tomllib
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from rootfs import installed  # noqa: E402  (sibling script)
from spec import load_spec  # noqa: E402

SPEC_VERSION = "1.6"
IMAGE_REPOSITORY = "ghcr.io/aivenator/aivenator"


def _load_check_sbom() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_sbom", ROOT / "hack" / "check-sbom.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


check_sbom = _load_check_sbom()


# --------------------------------------------------------------------------- reading the image


def blob(layout: Path, digest: str) -> Path:
    algorithm, hexdigest = digest.split(":", 1)
    return layout / "blobs" / algorithm / hexdigest


def manifest_digest(layout: Path, tag: str) -> str:
    index = json.loads((layout / "index.json").read_text())
    found = [
        m["digest"]
        for m in index["manifests"]
        if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag
    ]
    if len(found) != 1:
        raise SystemExit(f"image-sbom: {layout} has {len(found)} manifests tagged {tag!r}")
    return str(found[0])


def image_files(layout: Path, digest: str, venv: str) -> tuple[dict[str, Any], str, str, dict[str, str]]:
    """(config, dpkg status text, os-release text, {dist-info dir: METADATA text}) of the image."""
    manifest = json.loads(blob(layout, digest).read_text())
    config = json.loads(blob(layout, manifest["config"]["digest"]).read_text())
    status = os_release = ""
    metadata: dict[str, str] = {}
    site = re.compile(rf"^{re.escape(venv.strip('/'))}/lib/python3\.\d+/site-packages/([^/]+\.dist-info)/METADATA$")
    for layer in manifest["layers"]:
        raw = blob(layout, layer["digest"]).read_bytes()
        data = gzip.decompress(raw) if layer["mediaType"].endswith("+gzip") else raw
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            for member in tar:
                name = member.name.removeprefix("./")
                if not member.isfile():
                    continue
                if name == "var/lib/dpkg/status":
                    status = _read(tar, member)
                elif name in ("usr/lib/os-release", "etc/os-release"):
                    os_release = _read(tar, member) or os_release
                elif (match := site.match(name)) is not None:
                    metadata[match.group(1)] = _read(tar, member)
    return config, status, os_release, metadata


def _read(tar: tarfile.TarFile, member: tarfile.TarInfo) -> str:
    handle = tar.extractfile(member)
    return handle.read().decode("utf-8", errors="replace") if handle is not None else ""


def metadata_fields(text: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in text.split("\n\n", 1)[0].splitlines():
        key, sep, value = line.partition(": ")
        if sep and key not in fields:
            fields[key] = value.strip()
    return fields


# --------------------------------------------------------------------------- the BOM


def deb_purl(name: str, version: str, arch: str, distro: str) -> str:
    return f"pkg:deb/debian/{name}@{quote(version, safe='.-_~')}?arch={arch}&distro={distro}"


def pypi_purl(name: str, version: str) -> str:
    return f"pkg:pypi/{check_sbom.canonical(name)}@{quote(version, safe='.-_~+!')}"


def build_bom(
    digest: str, config: dict[str, Any], status: str, os_release: str, metadata: dict[str, str], version: str
) -> dict[str, Any]:
    release = dict(
        line.split("=", 1) for line in os_release.splitlines() if "=" in line and not line.startswith("#")
    )
    distro = f"debian-{release.get('VERSION_ID', '').strip(chr(34)) or 'unknown'}"
    components: list[dict[str, Any]] = []
    for name, fields in sorted(installed(status).items()):
        purl = deb_purl(name, fields["Version"], fields.get("Architecture", "all"), distro)
        component: dict[str, Any] = {
            "type": "library",
            "bom-ref": purl,
            "name": name,
            "version": fields["Version"],
            "purl": purl,
        }
        source = fields.get("Source", "").split(" ")[0]
        if source and source != name:
            component["properties"] = [{"name": "debian:source", "value": source}]
        components.append(component)
    for _, text in sorted(metadata.items()):
        fields = metadata_fields(text)
        purl = pypi_purl(fields["Name"], fields["Version"])
        components.append(
            {
                "type": "application" if check_sbom.canonical(fields["Name"]) == "aivenator" else "library",
                "bom-ref": purl,
                "name": fields["Name"],
                "version": fields["Version"],
                "purl": purl,
            }
        )
    hexdigest = digest.split(":", 1)[1]
    image_ref = f"pkg:oci/aivenator@{quote(digest, safe='')}?repository_url={IMAGE_REPOSITORY}&tag={version}"
    return {
        "$schema": f"http://cyclonedx.org/schema/bom-{SPEC_VERSION}.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "serialNumber": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, image_ref)}",
        "version": 1,
        "metadata": {
            "timestamp": config.get("created", "1970-01-01T00:00:00Z"),
            "tools": {"components": [{"type": "application", "name": "aivenator hack/image/sbom.py"}]},
            "component": {
                "type": "container",
                "bom-ref": image_ref,
                "name": IMAGE_REPOSITORY,
                "version": version,
                "purl": image_ref,
                "hashes": [{"alg": "SHA-256", "content": hexdigest}],
                "properties": [
                    {"name": "oci:architecture", "value": str(config.get("architecture", ""))},
                    {"name": "oci:os", "value": str(config.get("os", ""))},
                    {"name": "oci:user", "value": str(config.get("config", {}).get("User", ""))},
                ],
            },
        },
        "components": components,
    }


def problems(
    bom: dict[str, Any],
    status: str,
    metadata: dict[str, str],
    lock: dict[str, str],
    project: tuple[str, str],
    runtime_packages: list[str],
) -> list[str]:
    """Everything wrong with the SBOM relative to the image's files and the lock (pure)."""
    found: list[str] = []
    debs = installed(status)
    listed: dict[str, list[str]] = {}
    for component in bom.get("components", []):
        listed.setdefault(str(component.get("purl", "")).split("@")[0], []).append(str(component.get("version")))
    for name, fields in sorted(debs.items()):
        versions = listed.get(f"pkg:deb/debian/{name}", [])
        if versions != [fields["Version"]]:
            found.append(f"Debian package {name} {fields['Version']} is listed as {versions}")
    for package in runtime_packages:
        if package not in debs:
            found.append(f"runtime package {package} is not installed in the image")
    venv = {check_sbom.canonical(f["Name"]): f["Version"] for f in map(metadata_fields, metadata.values())}
    want = dict(lock)
    want[check_sbom.canonical(project[0])] = project[1]
    for name in sorted(set(venv) | set(want)):
        if name not in want:
            found.append(f"the venv has {name} {venv[name]}, which is not in requirements.lock")
        elif venv.get(name) != want[name]:
            found.append(f"the venv has {name} {venv.get(name)}, the lock/pyproject says {want[name]}")
        elif listed.get(f"pkg:pypi/{name}", []) != [venv[name]]:
            found.append(f"Python package {name} {venv[name]} is listed as {listed.get(f'pkg:pypi/{name}', [])}")
    deb_count = sum(1 for c in bom.get("components", []) if str(c.get("purl", "")).startswith("pkg:deb/"))
    if deb_count != len(debs):
        found.append(f"{deb_count} Debian components for {len(debs)} installed packages")
    if len(bom.get("components", [])) != len(debs) + len(venv):
        found.append("components other than the image's Debian and Python packages are listed")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layout", type=Path, default=ROOT / "out" / "image" / "oci")
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    parser.add_argument("--tag", default=pyproject["version"])
    parser.add_argument("-o", "--output", type=Path, default=ROOT / "out" / "image" / "sbom.cdx.json")
    args = parser.parse_args(argv)
    spec = load_spec()
    digest = manifest_digest(args.layout, args.tag)
    config, status, os_release, metadata = image_files(args.layout, digest, spec["venv"]["path"])
    if not status:
        print("image-sbom: the image has no var/lib/dpkg/status", file=sys.stderr)
        return 1
    bom = build_bom(digest, config, status, os_release, metadata, args.tag)
    text = json.dumps(bom, indent=2, sort_keys=False) + "\n"
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    lock = check_sbom.read_lock((ROOT / "requirements.lock").read_text())
    found = problems(bom, status, metadata, lock, (pyproject["name"], pyproject["version"]), spec["base"]["packages"])
    try:
        found += check_sbom.schema_problems(text, SPEC_VERSION)
    except ImportError:
        found.append("cyclonedx-python-lib[json-validation] is not installed: cannot validate the schema")
    for problem in found:
        print(f"image-sbom: {args.output}: {problem}", file=sys.stderr)
    if found:
        return 1
    debs = sum(1 for c in bom["components"] if c["purl"].startswith("pkg:deb/"))
    print(
        f"image-sbom: {args.output}: OK (CycloneDX {SPEC_VERSION}, schema-valid; image {digest}: "
        f"{debs} Debian packages, {len(bom['components']) - debs} Python packages)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
