#!/usr/bin/env python3
"""Root filesystem steps of the daemonless image build (run by mmdebstrap hooks in build.sh).

    python3 hack/image/rootfs.py purge-list ROOT      # packages to purge: not needed at run time
    python3 hack/image/rootfs.py add-user ROOT        # the image's user and group from spec.toml

`purge-list` reads ROOT/var/lib/dpkg/status and prints (one per line) every installed package
outside the dependency closure of the Essential packages and the spec's runtime packages: the
build-only packages (python3-venv and what only it pulled in, such as ensurepip's wheels). It
is dpkg's view of `apt-get autoremove` for a chroot without apt. Standard library only.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from spec import load_spec


def stanzas(status_text: str) -> list[dict[str, str]]:
    """dpkg status stanzas as field -> value (continuation lines joined with newlines)."""
    found: list[dict[str, str]] = []
    for block in re.split(r"\n\s*\n", status_text.strip()):
        fields: dict[str, str] = {}
        key = ""
        for line in block.splitlines():
            if line[:1] in (" ", "\t") and key:
                fields[key] += "\n" + line.strip()
            elif ":" in line:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        if fields:
            found.append(fields)
    return found


def installed(status_text: str) -> dict[str, dict[str, str]]:
    """Installed packages (Status `install ok installed`) by name."""
    return {s["Package"]: s for s in stanzas(status_text) if s.get("Status") == "install ok installed"}


def depended(fields: dict[str, str]) -> list[list[str]]:
    """Depends + Pre-Depends as alternatives lists of package names (versions/arch dropped)."""
    groups: list[list[str]] = []
    for key in ("Pre-Depends", "Depends"):
        for clause in filter(None, (c.strip() for c in fields.get(key, "").split(","))):
            groups.append([re.split(r"[\s(:]", alt.strip(), maxsplit=1)[0] for alt in clause.split("|")])
    return groups


def runtime_closure(packages: dict[str, dict[str, str]], roots: list[str]) -> set[str]:
    """Names reachable from the Essential packages and ``roots`` through installed dependencies."""
    provides: dict[str, list[str]] = {}
    for name, fields in packages.items():
        for provided in filter(None, (p.strip() for p in fields.get("Provides", "").split(","))):
            provides.setdefault(re.split(r"[\s(:]", provided, maxsplit=1)[0], []).append(name)
    keep: set[str] = set()
    todo = [n for n, f in packages.items() if f.get("Essential") == "yes"] + list(roots)
    while todo:
        name = todo.pop()
        if name in keep or name not in packages:
            continue
        keep.add(name)
        for alternatives in depended(packages[name]):
            # every installed alternative is kept: which one dpkg counts on is not recorded
            for alt in alternatives:
                todo += [alt] if alt in packages else provides.get(alt, [])
    return keep


def purge_list(root: Path, runtime_packages: list[str]) -> list[str]:
    packages = installed((root / "var/lib/dpkg/status").read_text())
    missing = [p for p in runtime_packages if p not in packages]
    if missing:
        raise SystemExit(f"rootfs: runtime packages not installed: {', '.join(missing)}")
    return sorted(set(packages) - runtime_closure(packages, runtime_packages))


def add_user(root: Path, name: str, uid: int, gid: int, home: str, shell: str) -> None:
    """Append the user and group (no password) unless the uid/gid or names are taken."""
    etc = root / "etc"
    for file, entry, key in (
        ("group", f"{name}:x:{gid}:", (name, gid)),
        ("passwd", f"{name}:x:{uid}:{gid}::{home}:{shell}", (name, uid)),
        ("gshadow", f"{name}:!::", None),
        ("shadow", f"{name}:!:0::::::", None),
    ):
        path = etc / file
        lines = path.read_text().splitlines() if path.exists() else []
        if key is not None:
            for line in lines:
                parts = line.split(":")
                if parts[0] == key[0] or (len(parts) > 2 and parts[2] == str(key[1])):
                    raise SystemExit(f"rootfs: {file} already has {line!r}")
        path.write_text("\n".join([*lines, entry]) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("purge-list", "add-user"))
    parser.add_argument("root", type=Path)
    args = parser.parse_args(argv)
    spec = load_spec()
    if args.command == "purge-list":
        print("\n".join(purge_list(args.root, list(spec["base"]["packages"]))))
    else:
        user = spec["user"]
        add_user(args.root, user["name"], int(user["uid"]), int(user["gid"]), user["home"], user["shell"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
