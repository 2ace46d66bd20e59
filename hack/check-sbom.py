#!/usr/bin/env python3
"""Check a CycloneDX JSON SBOM against the runtime lock.

Fails (exit 1, one line per problem) unless the file is JSON, `bomFormat` is CycloneDX with a
supported `specVersion`, it validates against the CycloneDX JSON schema (cyclonedx-python-lib's
strict validator; required, never skipped), the main component is this project at its
pyproject version, and every package in the lock appears exactly once as a component with the
locked version and a `pkg:pypi/<name>@<version>` purl, with nothing unlisted added.

    python hack/check-sbom.py out/sbom.cdx.json --lock requirements.lock --pyproject pyproject.toml
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

SUPPORTED_SPECS = ("1.4", "1.5", "1.6", "1.7")
_PURL = re.compile(r"^pkg:pypi/(?P<name>[^@?#]+)@(?P<version>[^?#]+)(?:[?#].*)?$")


def canonical(name: str) -> str:
    """PEP 503 normalised name (also the purl spelling for PyPI packages)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(text: str) -> dict[str, str]:
    """`name==version` entries of a pip requirements lock, keyed by canonical name.

    Continuation lines are joined and `--hash=...` options after a pin are ignored.
    """
    pins: dict[str, str] = {}
    for raw in re.sub(r"\\\n", " ", text).splitlines():
        line = re.sub(r"\s--hash=\S+", "", raw.split("#", 1)[0]).strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s;]+)(\s*;.*)?", line)
        if match is None:
            raise ValueError(f"not an exact pin: {raw!r}")
        pins[canonical(match.group(1))] = match.group(3)
    return pins


def problems(bom: Any, lock: Mapping[str, str], project: tuple[str, str]) -> list[str]:
    """Everything wrong with a parsed SBOM relative to the lock and the project (pure)."""
    if not isinstance(bom, dict):
        return ["the SBOM is not a JSON object"]
    found: list[str] = []
    if bom.get("bomFormat") != "CycloneDX":
        found.append(f"bomFormat is {bom.get('bomFormat')!r}, not 'CycloneDX'")
    if bom.get("specVersion") not in SUPPORTED_SPECS:
        found.append(f"specVersion {bom.get('specVersion')!r} is not one of {', '.join(SUPPORTED_SPECS)}")
    main = (bom.get("metadata") or {}).get("component") or {}
    name, version = project
    if canonical(str(main.get("name", ""))) != canonical(name) or main.get("version") != version:
        found.append(
            f"metadata.component is {main.get('name')!r} {main.get('version')!r}, want {name} {version}"
        )
    components = bom.get("components")
    if not isinstance(components, list):
        return [*found, "no components list"]
    seen: dict[str, int] = {}
    for component in components:
        cname = canonical(str(component.get("name", "")))
        seen[cname] = seen.get(cname, 0) + 1
        purl = component.get("purl")
        if not purl:
            found.append(f"component {cname} has no purl")
            continue
        match = _PURL.match(str(purl))
        if match is None:
            found.append(f"component {cname}: purl {purl!r} is not a pkg:pypi purl with a version")
            continue
        if canonical(match.group("name")) != cname or match.group("version") != component.get("version"):
            found.append(
                f"component {cname}: purl {purl!r} does not match name/version {component.get('version')!r}"
            )
        if cname not in lock:
            found.append(f"component {cname} is not in the lock")
        elif component.get("version") != lock[cname]:
            found.append(f"component {cname} is {component.get('version')!r}, the lock pins {lock[cname]}")
    for cname in sorted(lock):
        if cname not in seen:
            found.append(f"locked package {cname}=={lock[cname]} is missing from the SBOM")
        elif seen[cname] > 1:
            found.append(f"locked package {cname} appears {seen[cname]} times")
    return found


def schema_problems(text: str, spec: str) -> list[str]:
    """CycloneDX JSON schema validation with cyclonedx-python-lib (must be installed)."""
    from cyclonedx.schema import SchemaVersion  # type: ignore[import-not-found,unused-ignore]
    from cyclonedx.validation.json import JsonStrictValidator  # type: ignore[import-not-found,unused-ignore]

    version = SchemaVersion.from_version(spec)
    error = JsonStrictValidator(version).validate_str(text)
    return [] if error is None else [f"schema {spec}: {error}"]


def project_identity(pyproject: Path) -> tuple[str, str]:
    data = tomllib.loads(pyproject.read_text())["project"]
    return str(data["name"]), str(data["version"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="check a CycloneDX SBOM against requirements.lock")
    parser.add_argument("sbom", type=Path)
    parser.add_argument("--lock", type=Path, default=Path("requirements.lock"))
    parser.add_argument("--pyproject", type=Path, default=Path("pyproject.toml"))
    args = parser.parse_args(argv)
    text = args.sbom.read_text()
    try:
        bom = json.loads(text)
    except json.JSONDecodeError as exc:
        print(f"check-sbom: {args.sbom}: not JSON: {exc}", file=sys.stderr)
        return 1
    lock = read_lock(args.lock.read_text())
    found = problems(bom, lock, project_identity(args.pyproject))
    if isinstance(bom, dict) and bom.get("specVersion") in SUPPORTED_SPECS:
        try:
            found += schema_problems(text, str(bom["specVersion"]))
        except ImportError:
            found.append("cyclonedx-python-lib[json-validation] is not installed: cannot validate the schema")
    for problem in found:
        print(f"check-sbom: {args.sbom}: {problem}", file=sys.stderr)
    if found:
        return 1
    print(
        f"check-sbom: {args.sbom}: OK (CycloneDX {bom['specVersion']}, {len(lock)} locked packages present)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
