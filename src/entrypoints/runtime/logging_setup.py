"""structlog setup: text or JSON, a level, and redaction as the last step before rendering.

Every value of every event dict goes through `aivenator.adapters.redaction` (pattern rules plus the registry
of exact secrets the Aiven adapter has seen, which also holds the API token). Records from the
standard `logging` module (the kubernetes client, urllib3, httpx) are redacted by a filter too.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO, cast

import structlog
from aivenator.adapters.redaction import RedactingProcessor, SecretRegistry, default_registry, redact_text
from structlog.typing import FilteringBoundLogger

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}


class RedactingFilter(logging.Filter):
    """Redacts stdlib log records in place (message and arguments are rendered first)."""

    def __init__(self, registry: SecretRegistry) -> None:
        super().__init__()
        self._registry = registry

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed third-party log call must not take the process down
            message = str(record.msg)
        record.msg = redact_text(message, registry=self._registry)
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            # Exception texts (HTTP bodies) can echo credentials: render and redact them now.
            record.exc_text = redact_text(
                logging.Formatter().formatException(record.exc_info), registry=self._registry
            )
            record.exc_info = None
        return True


class _OwnHandler(logging.StreamHandler[TextIO]):
    """The root handler this module installs; reconfiguring replaces it and leaves others alone."""


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
    numeric = _LEVELS.get(level.lower(), logging.INFO)
    renderer: object
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer(sort_keys=True)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            RedactingProcessor(registry=reg),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
    root = logging.getLogger()
    for installed in list(root.handlers):
        if isinstance(installed, _OwnHandler):
            root.removeHandler(installed)
    handler = _OwnHandler(out)
    handler.addFilter(RedactingFilter(reg))
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    # Third-party libraries are noisy at debug and log request details: keep them at WARNING.
    root.setLevel(max(numeric, logging.WARNING))


def get_logger(name: str = "aivenator") -> FilteringBoundLogger:
    # structlog.get_logger is annotated Any; `configure_logging` sets make_filtering_bound_logger.
    return cast(FilteringBoundLogger, structlog.get_logger(name))
