"""Range-checked argparse types shared by the sub-commands.

A bad value is a usage error: argparse prints the usage and one line naming the option and the
value, and exits 2.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def _number(kind: type[int] | type[float], low: float, high: float, what: str) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text} is out of range ({what})")
        return value

    parse.__name__ = what  # argparse names the type in its messages
    return parse


def port(text: str) -> int:
    """A TCP port to bind: 0 (any free one) to 65535."""
    return int(_number(int, 0, 65535, "a port from 0 to 65535")(text))


def non_negative_int(text: str) -> int:
    return int(_number(int, 0, 2**31 - 1, "an integer from 0 to 2147483647")(text))


def positive_int(text: str) -> int:
    return int(_number(int, 1, 2**31 - 1, "an integer from 1 to 2147483647")(text))


def share(text: str) -> float:
    """A share of requests: 0 to 1."""
    return _number(float, 0.0, 1.0, "a number from 0 to 1")(text)


def non_negative_float(text: str) -> float:
    return _number(float, 0.0, 1e9, "a number from 0 to 1e9")(text)


def http_error_status(text: str) -> int:
    return int(_number(int, 500, 599, "an HTTP status from 500 to 599")(text))
