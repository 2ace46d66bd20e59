#!/usr/bin/env python3
"""The image definition in hack/image/spec.toml, and the check that the Dockerfile agrees with it.

    python3 hack/image/spec.py shell               # bash assignments for hack/image/build.sh
    python3 hack/image/spec.py check-dockerfile    # exit 1, one line per disagreement

The daemonless build (hack/image/build.sh) reads the spec; the Dockerfile is written by hand for
users with a container engine. `check-dockerfile` parses the Dockerfile and compares the points
both must share: Debian suite of every stage, the packages installed in the runtime stage and
the build stage, the venv path, the user (name, uid, gid, home, shell), USER, ENTRYPOINT, CMD,
WORKDIR, ENV, EXPOSE and the fixed labels. Standard library only (runs on any Python 3.11).
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "hack" / "image" / "spec.toml"
DOCKERFILE = ROOT / "Dockerfile"


def load_spec(path: Path = SPEC) -> dict[str, Any]:
    return tomllib.loads(path.read_text())


# --------------------------------------------------------------------------- shell variables


def shell_vars(spec: dict[str, Any]) -> str:
    """Bash assignments (scalars and arrays) for the build script; values shell-quoted."""
    q = shlex.quote
    config = spec["config"]
    user = spec["user"]
    lines = [
        f"IMAGE_SUITE={q(spec['base']['suite'])}",
        f"IMAGE_PACKAGES={q(','.join(spec['base']['packages']))}",
        f"IMAGE_BUILD_PACKAGES={q(','.join(spec['base']['build_packages']))}",
        f"IMAGE_VENV={q(spec['venv']['path'])}",
        f"IMAGE_USER_NAME={q(user['name'])}",
        f"IMAGE_UID={int(user['uid'])}",
        f"IMAGE_GID={int(user['gid'])}",
        f"IMAGE_HOME={q(user['home'])}",
        f"IMAGE_SHELL={q(user['shell'])}",
        f"IMAGE_WORKDIR={q(config['workdir'])}",
        "IMAGE_ENTRYPOINT=(" + " ".join(q(a) for a in config["entrypoint"]) + ")",
        "IMAGE_CMD=(" + " ".join(q(a) for a in config["cmd"]) + ")",
        "IMAGE_ENV=(" + " ".join(q(f"{k}={v}") for k, v in config["env"].items()) + ")",
        "IMAGE_PORTS=(" + " ".join(str(int(p)) for p in config["ports"]) + ")",
        "IMAGE_LABELS=(" + " ".join(q(f"{k}={v}") for k, v in spec["labels"].items()) + ")",
    ]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- Dockerfile parsing


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case
    args: str  # the rest of the (joined) line
    line: int


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction]


def instructions(text: str) -> list[Instruction]:
    """Dockerfile instructions with continuation lines joined and comment lines dropped."""
    found: list[Instruction] = []
    buffer: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not buffer):
            continue
        if not buffer:
            start = number
        if stripped.endswith("\\"):
            buffer.append(stripped[:-1].strip())
            continue
        buffer.append(stripped)
        joined = " ".join(part for part in buffer if part)
        buffer = []
        keyword, _, rest = joined.partition(" ")
        found.append(Instruction(keyword.upper(), rest.strip(), start))
    return found


def stages(parsed: list[Instruction]) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the stages, with `${ARG}` in FROM resolved to the default."""
    args: dict[str, str] = {}
    result: list[Stage] = []
    for ins in parsed:
        if ins.keyword == "ARG" and not result:
            name, _, default = ins.args.partition("=")
            args[name.strip()] = default.strip()
        elif ins.keyword == "FROM":
            words = ins.args.split()
            base = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), words[0])
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            result.append(Stage(base, name, []))
        elif result:
            result[-1].instructions.append(ins)
    return args, result


def apt_packages(stage: Stage) -> list[str]:
    """Packages named by every `apt-get install` of the stage's RUN instructions, in order."""
    packages: list[str] = []
    for ins in stage.instructions:
        if ins.keyword != "RUN":
            continue
        for command in re.split(r"&&|;|\|\|", ins.args):
            words = shlex.split(command)
            if len(words) >= 2 and words[0] == "apt-get" and "install" in words:
                after = words[words.index("install") + 1 :]
                packages += [w for w in after if not w.startswith("-")]
    return packages


def run_words(stage: Stage, program: str) -> list[list[str]]:
    """The argument lists of every `program ...` command in the stage's RUN instructions."""
    found: list[list[str]] = []
    for ins in stage.instructions:
        if ins.keyword != "RUN":
            continue
        for command in re.split(r"&&|;|\|\|", ins.args):
            words = shlex.split(command)
            if words and words[0] == program:
                found.append(words[1:])
    return found


def option(words: list[str], name: str) -> str | None:
    for i, word in enumerate(words):
        if word == name and i + 1 < len(words):
            return words[i + 1]
        if word.startswith(name + "="):
            return word.split("=", 1)[1]
    return None


def key_values(args: str) -> dict[str, str]:
    """`ENV`/`LABEL` arguments in the `key=value key2="value 2"` form."""
    pairs: dict[str, str] = {}
    for word in shlex.split(args):
        key, sep, value = word.partition("=")
        if not sep:
            raise ValueError(f"not key=value: {word!r} (use the key=value form)")
        pairs[key] = value
    return pairs


def last(stage: Stage, keyword: str) -> Instruction | None:
    found = [i for i in stage.instructions if i.keyword == keyword]
    return found[-1] if found else None


def disagreements(spec: dict[str, Any], dockerfile_text: str) -> list[str]:
    """Every point where the Dockerfile does not describe the spec's image (pure)."""
    problems: list[str] = []
    _, all_stages = stages(instructions(dockerfile_text))
    if not all_stages:
        return ["the Dockerfile has no FROM"]
    base, config, user = spec["base"], spec["config"], spec["user"]
    venv = spec["venv"]["path"]
    want_base = re.compile(rf"^(docker\.io/(library/)?)?{re.escape(base['distribution'])}:{base['suite']}(-slim)?(@sha256:[0-9a-f]{{64}})?$")
    for stage in all_stages:
        if not want_base.match(stage.base):
            problems.append(
                f"stage {stage.name or '(final)'} starts FROM {stage.base!r}, "
                f"not {base['distribution']}:{base['suite']}[-slim]"
            )
    final = all_stages[-1]
    if sorted(apt_packages(final)) != sorted(base["packages"]):
        problems.append(f"runtime stage installs {apt_packages(final)}, the spec says {base['packages']}")
    builders = all_stages[:-1]
    want_build = sorted(base["packages"] + base["build_packages"])
    if not any(sorted(apt_packages(s)) == want_build for s in builders):
        problems.append(f"no build stage installs exactly {want_build}")
    if not any(
        words[:2] == ["-m", "venv"] and venv in words
        for s in builders
        for words in run_words(s, "python3")
    ):
        problems.append(f"no build stage creates the venv with `python3 -m venv {venv}`")
    copies = [i.args.split() for i in final.instructions if i.keyword == "COPY"]
    if not any(c[0].startswith("--from=") and c[1:] == [venv, venv] for c in copies if len(c) == 3):
        problems.append(f"the runtime stage does not COPY --from=<build> {venv} {venv}")

    groupadds, useradds = run_words(final, "groupadd"), run_words(final, "useradd")
    if not any(option(w, "--gid") == str(user["gid"]) and w[-1] == user["name"] for w in groupadds):
        problems.append(f"no `groupadd --gid {user['gid']} {user['name']}` in the runtime stage")
    if not any(
        option(w, "--uid") == str(user["uid"])
        and option(w, "--gid") == str(user["gid"])
        and option(w, "--home-dir") == user["home"]
        and option(w, "--shell") == user["shell"]
        and w[-1] == user["name"]
        for w in useradds
    ):
        problems.append(
            f"no `useradd --uid {user['uid']} --gid {user['gid']} --home-dir {user['home']} "
            f"--shell {user['shell']} {user['name']}` in the runtime stage"
        )

    def check(keyword: str, got: Any, want: Any) -> None:
        if got != want:
            problems.append(f"{keyword} is {got!r}, the spec says {want!r}")

    ins = last(final, "USER")
    check("USER", ins.args if ins else None, f"{user['uid']}:{user['gid']}")
    for keyword, want in (("ENTRYPOINT", config["entrypoint"]), ("CMD", config["cmd"])):
        ins = last(final, keyword)
        try:
            got = json.loads(ins.args) if ins else None
        except json.JSONDecodeError:
            got = f"shell form {ins.args}" if ins else None
        check(keyword, got, want)
    ins = last(final, "WORKDIR")
    check("WORKDIR", ins.args if ins else None, config["workdir"])
    env: dict[str, str] = {}
    labels: dict[str, str] = {}
    ports: list[int] = []
    for ins in final.instructions:
        try:
            if ins.keyword == "ENV":
                env.update(key_values(ins.args))
            elif ins.keyword == "LABEL":
                labels.update(key_values(ins.args))
        except ValueError as exc:
            problems.append(f"line {ins.line}: {ins.keyword} {exc}")
        if ins.keyword == "EXPOSE":
            ports += [int(p.split("/")[0]) for p in ins.args.split()]
    check("ENV", env, dict(config["env"]))
    check("EXPOSE", sorted(ports), sorted(config["ports"]))
    fixed = {k: v for k, v in labels.items() if "$" not in v}
    check("LABEL (fixed values)", fixed, dict(spec["labels"]))
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("shell", "check-dockerfile"))
    parser.add_argument("--spec", type=Path, default=SPEC)
    parser.add_argument("--dockerfile", type=Path, default=DOCKERFILE)
    args = parser.parse_args(argv)
    spec = load_spec(args.spec)
    if args.command == "shell":
        sys.stdout.write(shell_vars(spec))
        return 0
    found = disagreements(spec, args.dockerfile.read_text())
    for problem in found:
        print(f"image spec: {args.dockerfile}: {problem}", file=sys.stderr)
    if found:
        return 1
    print(f"image spec: {args.dockerfile} agrees with {args.spec}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
