"""structlog setup: text or JSON, a level, and redaction as the last step before rendering.

Every value of every event dict goes through `aivenator.adapters.redaction` (pattern rules plus the registry
of exact secrets the Aiven adapter has seen, which also holds the API token). Records from the
standard `logging` module (the kubernetes client, urllib3, httpx, our adapters) go through
structlog's `ProcessorFormatter` with the same processors and renderer, so under `json` every
line is one JSON object whoever logged it (the record's logger name is in `logger`).
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO, cast

import structlog
from aivenator.adapters.redaction import RedactingProcessor, SecretRegistry, default_registry
from structlog.typing import FilteringBoundLogger

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}


class RenderingFilter(logging.Filter):
    """Renders a stdlib record's message and exception text in place, never raising.

    A malformed third-party log call (wrong argument count) would otherwise make the handler
    print a plain-text "--- Logging error ---" block; the exception text becomes the
    `exception` field. Redaction happens after, in the formatter's processors.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            message = str(record.msg)
        if record.exc_info and record.exc_info[1] is not None:
            message = f"{message}\n{logging.Formatter().formatException(record.exc_info)}"
            record.exc_info = None
        record.msg = message
        record.args = None
        return True


class _OwnHandler(logging.Handler):
    """The root handler this module installs; reconfiguring replaces it and leaves others alone.

    It writes through the same `PrintLogger` as structlog, so a stdlib record and a structlog
    event from two threads never share a line: both go out under that printer's one lock (a
    `StreamHandler` has its own lock, and its line could land inside a structlog line)."""

    def __init__(self, printer: structlog.PrintLogger) -> None:
        super().__init__()
        self._printer = printer

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        self._printer.msg(line)


def configure_logging(
    level: str = "info",
    fmt: str = "text",
    stream: TextIO | None = None,
    registry: SecretRegistry | None = None,
    secrets: tuple[str, ...] = (),
) -> None:
    """Configure structlog (and stdlib logging) process-wide.

    `secrets` (for example the Aiven token) are added to the redaction registry before anything
    is logged.
    """
    reg = default_registry if registry is None else registry
    reg.add(*secrets)
    out = sys.stderr if stream is None else stream
    printer = structlog.PrintLogger(file=out)
    numeric = _LEVELS.get(level.lower(), logging.INFO)
    renderer: object
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer(sort_keys=True)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=False)
    stamp = structlog.processors.TimeStamper(fmt="iso", utc=True)
    redact = RedactingProcessor(registry=reg)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            stamp,
            structlog.processors.format_exc_info,
            redact,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=lambda *args: printer,
        cache_logger_on_first_use=False,
    )
    root = logging.getLogger()
    for installed in list(root.handlers):
        if isinstance(installed, _OwnHandler):
            root.removeHandler(installed)
    handler = _OwnHandler(printer)
    handler.addFilter(RenderingFilter())
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                structlog.contextvars.merge_contextvars,
                structlog.stdlib.add_log_level,
                structlog.stdlib.add_logger_name,
                stamp,
            ],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, redact, renderer],
        )
    )
    root.addHandler(handler)
    # Third-party libraries are noisy at debug and log request details: keep them at WARNING.
    root.setLevel(max(numeric, logging.WARNING))


def get_logger(name: str = "aivenator") -> FilteringBoundLogger:
    # structlog.get_logger is annotated Any; `configure_logging` sets make_filtering_bound_logger.
    return cast(FilteringBoundLogger, structlog.get_logger(name))
