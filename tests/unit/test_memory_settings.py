"""`aivenator run` caps glibc's malloc arenas before it starts threads (runtime.memory)."""

from __future__ import annotations

import platform

import pytest
from aivenator.entrypoints.runtime.memory import limit_malloc_arenas


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt(M_ARENA_MAX) is a glibc setting")
def test_the_arena_cap_is_applied_on_glibc() -> None:
    assert limit_malloc_arenas(2) is True


def test_the_run_command_applies_it_before_anything_else() -> None:
    import inspect

    from aivenator.entrypoints.cli import cmd_run

    source = inspect.getsource(cmd_run.run)
    assert source.index("limit_malloc_arenas()") < source.index("build_container(")
