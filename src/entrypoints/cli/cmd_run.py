"""`aivenator run`: the operator against a real cluster and Aiven.

Exit codes: 0 after a graceful shutdown (SIGTERM/SIGINT), 2 for configuration problems (all of
them listed, one line each), 1 when the operator cannot start (for example the probe port is
taken or the cluster cannot be reached).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from types import FrameType

from aivenator.entrypoints import config as config_module
from aivenator.entrypoints.container import build_container
from aivenator.entrypoints.runtime.logging_setup import configure_logging, get_logger
from aivenator.entrypoints.runtime.memory import limit_malloc_arenas
from returns.result import Failure, Success


def add_arguments(parser: argparse.ArgumentParser) -> None:
    config_module.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    match config_module.load_config(args, os.environ):
        case Failure(problems):
            for problem in problems:
                print(f"aivenator run: {problem}", file=sys.stderr)
            return 2
        case Success(config):
            pass
    limit_malloc_arenas()
    configure_logging(config.log_level, config.log_format, secrets=(config.aiven_token,))
    log = get_logger()
    if config_module.token_on_command_line(args):
        log.warning("aiven_token_on_command_line", hint=config_module.TOKEN_ON_COMMAND_LINE)
    log.info(
        "aivenator_starting",
        projects=list(config.projects),
        main_project=config.main_project,
        aiven_api_url=config.aiven_api_url,
        sync_period=config.sync_period,
        workers=config.workers,
        leader_elect=config.leader_elect,
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("shutdown_requested", signal=signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    container = build_container(config)
    try:
        operator = container.operator()
        operator.start()
    except Exception as exc:  # start-up failures end the process with one clear line
        log.error("operator_start_failed", error=type(exc).__name__, detail=str(exc))
        return 1
    try:
        while not stop.wait(1.0):
            pass
    finally:
        operator.stop()
        aiven = container.aiven()
        aiven.close()
    log.info("aivenator_stopped")
    return 0
