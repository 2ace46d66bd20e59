"""Where the Aiven adapter's contract suite runs: the simulator, or a real Aiven project.

`make test` runs `tests/integration/test_aiven_contract.py` against the simulator on loopback
HTTP. `make test-aiven` runs `python -m tests.integration.aiven_target`, which checks the
environment and then runs the same suite against real Aiven (`AIVENATOR_AIVEN_TARGET=real`):

    AIVEN_TOKEN            API token with write access to the project (never printed)
    AIVEN_TEST_PROJECT     project holding the three services below
    AIVEN_TEST_KAFKA       Kafka service name
    AIVEN_TEST_OPENSEARCH  OpenSearch service name
    AIVEN_TEST_VALKEY      Valkey service name
    AIVEN_API_URL          optional, default https://api.aiven.io

A missing variable is an error naming every missing one (exit 2), never a silent skip.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REQUIRED = (
    "AIVEN_TOKEN",
    "AIVEN_TEST_PROJECT",
    "AIVEN_TEST_KAFKA",
    "AIVEN_TEST_OPENSEARCH",
    "AIVEN_TEST_VALKEY",
)
DEFAULT_API_URL = "https://api.aiven.io"
#: Set by the runner: the contract suite then takes its target from the variables above.
TARGET_VARIABLE = "AIVENATOR_AIVEN_TARGET"
SUITE = Path(__file__).resolve().parent / "test_aiven_contract.py"


@dataclass(frozen=True)
class AivenTarget:
    base_url: str
    token: str = field(repr=False)
    project: str
    kafka: str
    opensearch: str
    valkey: str
    #: Every user the suite creates starts with this; cleanup removes whatever carries it.
    user_prefix: str
    real: bool


def unique_prefix() -> str:
    return f"aivenator-ct-{uuid.uuid4().hex[:8]}-"


def missing_variables(env: Mapping[str, str]) -> tuple[str, ...]:
    return tuple(name for name in REQUIRED if not env.get(name, "").strip())


def target_from_env(env: Mapping[str, str]) -> AivenTarget:
    """The real target; call only when `missing_variables(env)` is empty."""
    return AivenTarget(
        base_url=env.get("AIVEN_API_URL", "").strip() or DEFAULT_API_URL,
        token=env["AIVEN_TOKEN"].strip(),
        project=env["AIVEN_TEST_PROJECT"].strip(),
        kafka=env["AIVEN_TEST_KAFKA"].strip(),
        opensearch=env["AIVEN_TEST_OPENSEARCH"].strip(),
        valkey=env["AIVEN_TEST_VALKEY"].strip(),
        user_prefix=unique_prefix(),
        real=True,
    )


def main(argv: Sequence[str] | None = None) -> int:
    missing = missing_variables(os.environ)
    if missing:
        print(
            f"make test-aiven: missing {', '.join(missing)} (see 'Real-Aiven conformance tier' in README.md)",
            file=sys.stderr,
        )
        return 2
    env = {**os.environ, TARGET_VARIABLE: "real"}
    command = [sys.executable, "-m", "pytest", str(SUITE), "-p", "no:cacheprovider", *(argv or ["-q"])]
    return subprocess.run(command, env=env, check=False).returncode


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
