"""hack/check-sbom.py: the SBOM gate accepts a faithful BOM and names every way one can be wrong."""

from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_sbom", ROOT / "hack" / "check-sbom.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


check = _load()
LOCK = {"pyyaml": "6.0.4", "typing-extensions": "4.16.0", "httpx": "0.28.1"}
PROJECT = ("aivenator", "0.1.0")


def good_bom() -> dict[str, Any]:
    return {
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "metadata": {"component": {"type": "application", "name": "aivenator", "version": "0.1.0"}},
        "components": [
            {"type": "library", "name": "PyYAML", "version": "6.0.4", "purl": "pkg:pypi/pyyaml@6.0.4"},
            {
                "type": "library",
                "name": "typing_extensions",
                "version": "4.16.0",
                "purl": "pkg:pypi/typing-extensions@4.16.0",
            },
            {"type": "library", "name": "httpx", "version": "0.28.1", "purl": "pkg:pypi/httpx@0.28.1"},
        ],
    }


def test_a_faithful_bom_has_no_problems() -> None:
    assert check.problems(good_bom(), LOCK, PROJECT) == []


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda b: b.update(bomFormat="SPDX"), "bomFormat"),
        (lambda b: b.update(specVersion="1.1"), "specVersion"),
        (lambda b: b["components"].pop(2), "httpx==0.28.1 is missing"),
        (lambda b: b["components"][0].pop("purl"), "has no purl"),
        (lambda b: b["components"][0].update(purl="pkg:npm/pyyaml@6.0.4"), "not a pkg:pypi purl"),
        (lambda b: b["components"][0].update(purl="pkg:pypi/pyyaml@6.0.3"), "does not match"),
        (
            lambda b: b["components"][2].update(version="0.27.0", purl="pkg:pypi/httpx@0.27.0"),
            "lock pins 0.28.1",
        ),
        (lambda b: b["components"].append(dict(b["components"][2])), "appears 2 times"),
        (
            lambda b: b["components"].append({"name": "evil", "version": "1", "purl": "pkg:pypi/evil@1"}),
            "evil is not in the lock",
        ),
        (
            lambda b: b["metadata"].update(component={"name": "aivenator", "version": "9"}),
            "metadata.component",
        ),
        (lambda b: b.pop("components"), "no components"),
    ],
)
def test_each_defect_is_reported(mutate: Any, expected: str) -> None:
    bom = copy.deepcopy(good_bom())
    mutate(bom)
    found = check.problems(bom, LOCK, PROJECT)
    assert any(expected in p for p in found), found


def test_lock_parsing_normalises_names_and_rejects_loose_pins() -> None:
    text = "# comment\nPyYAML==6.0.4\ntyping_extensions==4.16.0  # why\n\nzope.interface==7.0 ; python_version<'4'\n"
    assert check.read_lock(text) == {
        "pyyaml": "6.0.4",
        "typing-extensions": "4.16.0",
        "zope-interface": "7.0",
    }
    with pytest.raises(ValueError):
        check.read_lock("httpx>=0.27\n")


def test_the_repository_lock_is_exact_and_covers_the_declared_runtime_dependencies() -> None:
    import tomllib

    lock = check.read_lock((ROOT / "requirements.lock").read_text())
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for requirement in declared:
        name = check.canonical(requirement.split(">")[0].split("=")[0].split("<")[0].split("[")[0].strip())
        assert name in lock, f"{name} is a runtime dependency but not in requirements.lock"
    dev_only = {"pytest", "hypothesis", "mypy", "ruff", "import-linter", "aiven-client"}
    assert not dev_only & set(lock), dev_only & set(lock)


def test_main_reports_non_json_and_missing_schema_library(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lock = tmp_path / "requirements.lock"
    lock.write_text("PyYAML==6.0.4\ntyping_extensions==4.16.0\nhttpx==0.28.1\n")
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\nname = "aivenator"\nversion = "0.1.0"\n')
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    assert check.main([str(broken), "--lock", str(lock), "--pyproject", str(pyproject)]) == 1
    assert "not JSON" in capsys.readouterr().err
    sbom = tmp_path / "sbom.json"
    sbom.write_text(json.dumps(good_bom()))
    rc = check.main([str(sbom), "--lock", str(lock), "--pyproject", str(pyproject)])
    err = capsys.readouterr().err
    if importlib.util.find_spec("cyclonedx") is None:
        # Without the validator library the gate must fail, never pass silently.
        assert rc == 1 and "cannot validate the schema" in err
    else:
        assert rc == 0, err
