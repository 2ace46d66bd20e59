"""Hypothesis profiles shared by every tier.

Locally examples are random, so each run can find something new. Under CI (`CI=true`) the
search is derandomized: the same examples every run, so a landing is never decided by a
lucky draw; a failure found locally is kept as an explicit regression test instead. No
per-example deadline in either profile: timing on a busy 2-core machine is not a property
of the code (benchmarks measure speed).
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("dev", deadline=None)
settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI", "").lower() in {"1", "true", "yes"} else "dev")
