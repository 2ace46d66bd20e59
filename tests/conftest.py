"""Hypothesis profiles and seed shared by every tier.

Locally examples are random, so each run can find something new. Under CI (`CI=true`) the seed
is derived from the commit being tested (the first 16 hex digits of `git rev-parse HEAD`): a
commit always replays the same programs, so a result is reproducible, and the next commit draws
new ones, so CI keeps exploring instead of replaying one fixed set forever (what a derandomized
run did). The seed is printed in the pytest header. To replay a CI failure locally:

    CI=true .venv/bin/pytest tests/unit/test_x.py --hypothesis-seed=<seed from the header>

(or check out that commit and run with `CI=true`; `AIVENATOR_HYPOTHESIS_SEED=<n>` overrides the
derived seed). A failure found this way becomes an explicit regression test. No per-example
deadline in either profile: timing on a busy 2-core machine is not a property of the code
(benchmarks measure speed).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from hypothesis import settings

_ROOT = Path(__file__).resolve().parent.parent
_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

settings.register_profile("dev", deadline=None)
settings.register_profile("ci", deadline=None, print_blob=True)
settings.load_profile("ci" if _CI else "dev")


def commit_seed() -> int | None:
    """The Hypothesis seed for this checkout: the override, else derived from HEAD (None
    outside a git checkout)."""
    override = os.environ.get("AIVENATOR_HYPOTHESIS_SEED", "").strip()
    if override:
        return int(override)
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=_ROOT, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return int(head[:16], 16) if len(head) >= 16 else None


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    # Runs before Hypothesis' own pytest_configure, which reads --hypothesis-seed: an explicit
    # option wins; under CI the commit's seed is filled in.
    if _CI and config.getoption("hypothesis_seed", None) is None:
        seed = commit_seed()
        if seed is not None:
            config.option.hypothesis_seed = str(seed)


def _seed_line(config: pytest.Config) -> str:
    seed = config.getoption("hypothesis_seed", None)
    if seed is None:
        return "hypothesis seed: random (set CI=true for the commit's seed, or --hypothesis-seed=N)"
    return f"hypothesis seed: {seed} (replay: --hypothesis-seed={seed})"


def pytest_report_header(config: pytest.Config) -> str:
    return _seed_line(config)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    # `make test` runs pytest -q, which hides the header: repeat the seed where CI's log shows it.
    if config.get_verbosity() < 0:
        terminalreporter.write_line(_seed_line(config))
