"""The `aivenator` command: one sub-command per module, imported only when used.

Each sub-command module exposes `add_arguments(parser)` and `run(args) -> int`.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "run": ("aivenator.entrypoints.cli.cmd_run", "run the operator against a cluster and Aiven"),
    "demo": (
        "aivenator.entrypoints.cli.cmd_demo",
        "run the operator on an in-memory cluster and the Aiven simulator",
    ),
    "render": (
        "aivenator.entrypoints.cli.cmd_render",
        "print the Secrets the operator would write for an AivenApplication",
    ),
    "fake-aiven": (
        "aivenator.entrypoints.cli.cmd_fake_aiven",
        "serve the Aiven API simulator on a loopback port",
    ),
    "audit": ("aivenator.entrypoints.cli.cmd_audit", "read-only operations report over a cluster and Aiven"),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aivenator", description="Aiven credentials for Kubernetes workloads"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        if only is None or only == name:
            try:
                module = importlib.import_module(module_name)
            except ModuleNotFoundError as exc:
                if exc.name != module_name:
                    raise
                continue
            module.add_arguments(sub_parser)
            sub_parser.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    chosen = next((a for a in args_list if a in SUBCOMMANDS), None)
    parser = build_parser(only=chosen)
    args = parser.parse_args(args_list)
    runner = getattr(args, "_run", None)
    if runner is None:
        print(f"aivenator: sub-command {args.command!r} is not available in this build", file=sys.stderr)
        return 2
    try:
        result: int = runner(args)
        sys.stdout.flush()
    except BrokenPipeError:
        return _closed_pipe()
    return result


def _closed_pipe() -> int:
    """The reader of stdout went away (`aivenator render ... | head`): exit quietly.

    stdout is pointed at /dev/null so the interpreter's own flush at exit cannot raise again;
    the status is 1, as Python's documentation recommends for EPIPE.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 1


if __name__ == "__main__":
    sys.exit(main())
