"""The CLI turns bad input into one line per problem on stderr and exit 1, never a traceback.

`render` is fed arbitrary bytes and arbitrary YAML values for both of its files (in-process, for
speed), plus structurally plausible inputs: the shipped examples with one value anywhere
replaced by an arbitrary one. A few cases also run as a subprocess, as a user would.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aivenator.entrypoints.cli.main import main
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

EXAMPLES = Path(__file__).resolve().parents[2] / "deploy" / "examples"
FACTS = EXAMPLES / "facts.yaml"
APP = EXAMPLES / "all-services.yaml"
NOW = "2026-11-27T12:00:00Z"


def _run_render(manifest: bytes, facts: bytes) -> tuple[int, str, str]:
    with tempfile.TemporaryDirectory() as tmp:
        app_path, facts_path = Path(tmp) / "app.yaml", Path(tmp) / "facts.yaml"
        app_path.write_bytes(manifest)
        facts_path.write_bytes(facts)
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["render", "-f", str(app_path), "--facts", str(facts_path), "--now", NOW])
    return code, out.getvalue(), err.getvalue()


def _check(code: int, out: str, err: str) -> None:
    assert code in (0, 1), (code, err)
    assert "Traceback" not in err
    if code == 1:
        assert out == ""
        lines = err.splitlines()
        assert lines, "exit 1 without saying why"
        assert all(line.startswith("aivenator render: ") for line in lines), err


yaml_leaves = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
yaml_values = st.recursive(
    yaml_leaves,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


def _dump(value: Any) -> bytes:
    return yaml.safe_dump(value, allow_unicode=True).encode("utf-8")


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict):
        for key, sub in value.items():
            yield from _paths(sub, (*prefix, key))
    elif isinstance(value, list):
        for index, sub in enumerate(value):
            yield from _paths(sub, (*prefix, index))


def _replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {k: (_replaced(v, rest, new) if k == head else v) for k, v in value.items()}
    return [(_replaced(v, rest, new) if i == head else v) for i, v in enumerate(value)]


EXAMPLE_APP = yaml.safe_load(APP.read_text(encoding="utf-8"))
EXAMPLE_FACTS = yaml.safe_load(FACTS.read_text(encoding="utf-8"))


@st.composite
def mutated(draw: st.DrawFn, original: Any) -> bytes:
    path = draw(st.sampled_from(list(_paths(original))))
    return _dump(_replaced(original, path, draw(yaml_values)))


FILE_CONTENTS = st.binary(max_size=200) | yaml_values.map(_dump)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(manifest=FILE_CONTENTS, facts=FILE_CONTENTS)
def test_render_survives_arbitrary_files(manifest: bytes, facts: bytes) -> None:
    _check(*_run_render(manifest, facts))


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(
    manifest=st.just(_dump(EXAMPLE_APP)) | mutated(EXAMPLE_APP),
    facts=st.just(_dump(EXAMPLE_FACTS)) | mutated(EXAMPLE_FACTS),
)
def test_render_survives_one_value_changed_anywhere(manifest: bytes, facts: bytes) -> None:
    _check(*_run_render(manifest, facts))


@pytest.mark.parametrize(
    ("manifest", "facts", "complaint"),
    [
        (b"\xff\xfe", FACTS.read_bytes(), "app.yaml: not UTF-8 text (byte 0xff at offset 0)"),
        (APP.read_bytes(), b"projects: {x: \xe9}", "facts.yaml: not UTF-8 text (byte 0xe9 at offset 14)"),
        (b"", FACTS.read_bytes(), "app.yaml: no AivenApplication in the manifest (the file is empty)"),
        (b"---\n---\n", FACTS.read_bytes(), "app.yaml: no AivenApplication in the manifest"),
        (APP.read_bytes(), b"projects: 5\n", "facts.yaml: projects: must be a mapping, not int"),
        (APP.read_bytes(), b"", "facts.yaml: the file is empty"),
        (b"kind: [", FACTS.read_bytes(), "app.yaml: invalid YAML: "),
    ],
)
def test_named_bad_inputs_name_the_file_and_the_problem(manifest: bytes, facts: bytes, complaint: str) -> None:
    code, out, err = _run_render(manifest, facts)
    assert (code, out) == (1, "")
    assert complaint in err
    assert len(err.splitlines()) == 1


def _facts_with(mutate: Any) -> bytes:
    facts = yaml.safe_load(FACTS.read_text(encoding="utf-8"))
    mutate(facts)
    return _dump(facts)


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda f: f["services"][0].__setitem__("endpoints", [1, 2]), "services[0].endpoints: must be a mapping"),
        (
            lambda f: f["services"][0]["endpoints"]["kafka"].__setitem__("port", 99999999),
            "services[0].endpoints.kafka.port: 99999999 is out of range (1 to 65535)",
        ),
        (
            lambda f: f["services"][0]["endpoints"]["kafka"].__setitem__("port", "26484"),
            "services[0].endpoints.kafka.port: must be an integer",
        ),
        (lambda f: f.__setitem__("users", {"a": 1}), "users: must be a list, not dict"),
        (lambda f: f["users"][0].__setitem__("password", 5), "users[0].password: must be a string, not int"),
    ],
)
def test_facts_fields_are_checked_and_named(mutate: Any, field: str) -> None:
    code, out, err = _run_render(APP.read_bytes(), _facts_with(mutate))
    assert (code, out) == (1, "")
    assert f"facts.yaml: {field}" in err, err


def _subprocess(*args: str, stdout: Any = subprocess.PIPE) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "aivenator.entrypoints.cli.main", *args],
        stdout=stdout,
        stderr=subprocess.PIPE,
        timeout=60,
        check=False,
    )


def test_as_a_process_bad_input_is_one_line_and_exit_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"\x80abc")
    done = _subprocess("render", "-f", str(bad), "--facts", str(FACTS))
    assert (done.returncode, done.stdout) == (1, b"")
    assert done.stderr.decode() == f"aivenator render: {bad}: not UTF-8 text (byte 0x80 at offset 0)\n"


def test_as_a_process_an_out_of_range_port_is_a_usage_error() -> None:
    done = _subprocess("fake-aiven", "--port", "99999999")
    assert done.returncode == 2
    assert done.stderr.decode().splitlines()[-1] == (
        "aivenator fake-aiven: error: argument --port: 99999999 is out of range (a port from 0 to 65535)"
    )


def test_as_a_process_a_closed_pipe_exits_quietly() -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first byte (`render ... | head` after head exits)
    try:
        done = _subprocess("render", "-f", str(APP), "--facts", str(FACTS), stdout=write_end)
    finally:
        os.close(write_end)
    assert done.returncode == 1
    assert done.stderr == b""


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        (b"\xff", "not UTF-8 text (offset 0)"),
        (b"[1,2", "invalid YAML at line 1"),
        (b"projects: 5", "'projects' must be a mapping"),
        (b"x", "top level must be a mapping"),
    ],
)
def test_fake_aiven_names_the_seed_file_and_the_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, complaint: str
) -> None:
    import argparse

    from aivenator.entrypoints.cli import cmd_fake_aiven

    seed = tmp_path / "seed.yaml"
    seed.write_bytes(content)
    parser = argparse.ArgumentParser()
    cmd_fake_aiven.add_arguments(parser)
    assert cmd_fake_aiven.run(parser.parse_args(["--seed", str(seed), "--port", "0"])) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"aivenator fake-aiven: --seed {seed}: ") and complaint in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
