"""The wheel installs one top-level package, `aivenator`, mapped onto the folders under src/."""

from __future__ import annotations

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _pyproject() -> dict[str, object]:
    with (REPO / "pyproject.toml").open("rb") as handle:
        return tomllib.load(handle)


def test_every_folder_of_src_with_an_init_is_a_listed_package() -> None:
    setuptools = _pyproject()["tool"]["setuptools"]  # type: ignore[index]  # tomllib returns nested dicts
    on_disk = {
        ".".join(("aivenator", *init.parent.relative_to(REPO / "src").parts))
        for init in (REPO / "src").rglob("__init__.py")
    }
    assert sorted(setuptools["packages"]) == sorted(on_disk)
    assert setuptools["package-dir"] == {"aivenator": "src"}


def test_one_top_level_name_and_no_other() -> None:
    setuptools = _pyproject()["tool"]["setuptools"]  # type: ignore[index]  # tomllib returns nested dicts
    assert {name.split(".")[0] for name in setuptools["packages"]} == {"aivenator"}


def test_the_installed_package_is_importable_and_the_old_names_are_not() -> None:
    import importlib.util

    import aivenator.domain

    assert Path(aivenator.domain.__file__ or "").parent == REPO / "src" / "domain"
    for gone in ("domain", "adapters", "entrypoints"):
        assert importlib.util.find_spec(gone) is None, gone
