"""`aivenator demo`: the operator end to end on the in-memory cluster and the Aiven simulator.

No cluster, no Aiven account and no network beyond loopback are needed. Exit 0 when every step
passed; 1 naming the failed step otherwise. See `aivenator.entrypoints.cli.demo` for the steps.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from aivenator.entrypoints.cli.demo import run_demo


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--timeout", type=float, default=15.0, help="seconds each step may take (default 15)")
    parser.add_argument("--workers", type=int, default=4, help="reconcile workers (default 4)")
    parser.add_argument(
        "--examples",
        type=Path,
        default=None,
        help="directory with all-services.yaml and kafka-only.yaml (default: deploy/examples)",
    )
    parser.add_argument(
        "--verbose", action="store_true", help="also print the operator's (redacted) logs on stderr"
    )


def run(args: argparse.Namespace) -> int:
    if args.timeout <= 0 or args.workers <= 0:
        print("aivenator demo: --timeout and --workers must be positive", file=sys.stderr)
        return 2
    return run_demo(sys.stdout, args.timeout, args.workers, args.examples, args.verbose)
