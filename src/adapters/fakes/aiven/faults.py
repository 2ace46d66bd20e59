"""Fault injection for the Aiven simulator, controllable per test and from the CLI.

Every fault is a rule matched against the request method (full match, case-insensitive regex)
and the decoded path (regex search), optionally limited to the next `times` matching requests and
to a share `rate` of them (drawn from a seeded `random.Random`, so runs are repeatable).

Kinds and what the simulator does when a rule fires:

- latency: sleep `seconds` before answering (several latency rules add up);
- error: answer `status` (default 500) without touching state;
- throttle: answer 429 with `Retry-After` and Aiven's rate-limit body;
- rate_limit: a request budget per window; requests beyond it get 429 until the window ends;
- timeout: MockTransport raises `httpx.ReadTimeout`; HTTP sleeps `hang_s`, then drops the
  connection without answering;
- reset: MockTransport raises `httpx.RemoteProtocolError`; HTTP closes the connection at once;
- commit_then_fail: the operation is applied to state, then the answer is replaced by `status`
  (or, with `drop=True`, by a dropped connection); only consumed by requests that succeeded;
- echo_canary: an error answer whose body contains the given canary string (for checking that
  callers never log response bodies);
- user_lag: a user created by a matching request is invisible to the next `reads` GETs of it;
- password_lag: after a matching password reset (PUT), the next `reads` GETs of that user show
  an empty password (the real API's eventual consistency, aiven-api.md §5.3.3).
"""

from __future__ import annotations

import math
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal

FaultKind = Literal[
    "latency",
    "error",
    "throttle",
    "rate_limit",
    "timeout",
    "reset",
    "commit_then_fail",
    "echo_canary",
    "user_lag",
    "password_lag",
]

#: Aiven's real 429 message shape (aiven-api.md §2.1).
RATE_LIMIT_MESSAGE = "The user has sent too many requests in a given amount of time: Rate limit {limit} exceeded - try again in {seconds}s"

_PRE_KINDS: tuple[FaultKind, ...] = ("error", "throttle", "rate_limit", "timeout", "reset", "echo_canary")


@dataclass
class Fault:
    """One rule. Created through `FaultInjector` methods; inspect `hits` in tests."""

    kind: FaultKind
    method: re.Pattern[str] | None = None
    path: re.Pattern[str] | None = None
    times: int | None = None
    rate: float = 1.0
    status: int = 500
    message: str | None = None
    retry_after: int | None = None
    limit: int = 120
    seconds: float = 0.0
    hang_s: float = 0.0
    drop: bool = False
    canary: str = ""
    reads: int = 0
    window_s: float = 60.0
    hits: int = 0
    _window_start: float | None = field(default=None, repr=False)
    _window_count: int = field(default=0, repr=False)

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.hits >= self.times

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and not self.method.fullmatch(method):
            return False
        return self.path is None or self.path.search(path) is not None


@dataclass(frozen=True)
class Decision:
    """What the fault rules decided for one request before it reaches the API logic."""

    latency_s: float = 0.0
    fault: Fault | None = None
    retry_after: int | None = None


class FaultInjector:
    """Holds the active fault rules. Thread-safe; all methods may be called while serving."""

    def __init__(self, seed: int = 0, monotonic: Callable[[], float] | None = None) -> None:
        self._lock = threading.Lock()
        self._rules: list[Fault] = []
        self._rng = random.Random(seed)
        self._monotonic = monotonic or time.monotonic

    # ---- configuration --------------------------------------------------------------------

    def reseed(self, seed: int) -> None:
        with self._lock:
            self._rng = random.Random(seed)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    @property
    def rules(self) -> list[Fault]:
        with self._lock:
            return list(self._rules)

    def add(self, fault: Fault) -> Fault:
        if not 0.0 <= fault.rate <= 1.0:
            raise ValueError("rate must be between 0 and 1")
        if fault.times is not None and fault.times < 0:
            raise ValueError("times must be >= 0")
        with self._lock:
            self._rules.append(fault)
        return fault

    def latency(
        self,
        ms: float,
        *,
        method: str | None = None,
        path: str | None = None,
        times: int | None = None,
        rate: float = 1.0,
    ) -> Fault:
        return self.add(
            Fault("latency", *_patterns(method, path), times=times, rate=rate, seconds=ms / 1000.0)
        )

    def error(
        self,
        status: int = 500,
        *,
        message: str | None = None,
        method: str | None = None,
        path: str | None = None,
        times: int | None = None,
        rate: float = 1.0,
        retry_after: int | None = None,
    ) -> Fault:
        return self.add(
            Fault(
                "error",
                *_patterns(method, path),
                times=times,
                rate=rate,
                status=status,
                message=message,
                retry_after=retry_after,
            )
        )

    def throttle(
        self,
        *,
        retry_after: int = 1,
        limit: int = 120,
        method: str | None = None,
        path: str | None = None,
        times: int | None = None,
        rate: float = 1.0,
    ) -> Fault:
        return self.add(
            Fault(
                "throttle",
                *_patterns(method, path),
                times=times,
                rate=rate,
                retry_after=retry_after,
                limit=limit,
            )
        )

    def rate_limit(
        self,
        budget: int,
        window_s: float = 60.0,
        *,
        retry_after: int | None = None,
        method: str | None = None,
        path: str | None = None,
    ) -> Fault:
        """Allow `budget` matching requests per window; the rest get 429 until the window ends.

        `Retry-After` is the whole seconds left in the window (at least 1) unless fixed here.
        """
        if budget < 0 or window_s <= 0:
            raise ValueError("budget must be >= 0 and window_s > 0")
        return self.add(
            Fault(
                "rate_limit",
                *_patterns(method, path),
                limit=budget,
                window_s=window_s,
                retry_after=retry_after,
            )
        )

    def timeout(
        self,
        *,
        hang_s: float = 5.0,
        method: str | None = None,
        path: str | None = None,
        times: int | None = None,
        rate: float = 1.0,
    ) -> Fault:
        return self.add(Fault("timeout", *_patterns(method, path), times=times, rate=rate, hang_s=hang_s))

    def reset(
        self,
        *,
        method: str | None = None,
        path: str | None = None,
        times: int | None = None,
        rate: float = 1.0,
    ) -> Fault:
        return self.add(Fault("reset", *_patterns(method, path), times=times, rate=rate))

    def commit_then_fail(
        self,
        *,
        status: int = 500,
        drop: bool = False,
        method: str | None = None,
        path: str | None = None,
        times: int | None = None,
        rate: float = 1.0,
    ) -> Fault:
        return self.add(
            Fault(
                "commit_then_fail", *_patterns(method, path), times=times, rate=rate, status=status, drop=drop
            )
        )

    def echo_canary(
        self,
        canary: str,
        *,
        status: int = 500,
        method: str | None = None,
        path: str | None = None,
        times: int | None = None,
        rate: float = 1.0,
    ) -> Fault:
        return self.add(
            Fault(
                "echo_canary", *_patterns(method, path), times=times, rate=rate, status=status, canary=canary
            )
        )

    def user_lag(self, reads: int, *, path: str | None = None, times: int | None = None) -> Fault:
        """Users created by matching POSTs answer 404 to their next `reads` GETs."""
        if reads < 0:
            raise ValueError("reads must be >= 0")
        return self.add(Fault("user_lag", *_patterns("POST", path), times=times, reads=reads))

    def password_lag(self, reads: int, *, path: str | None = None, times: int | None = None) -> Fault:
        """After matching password resets (PUTs), the next `reads` GETs show an empty password."""
        if reads < 0:
            raise ValueError("reads must be >= 0")
        return self.add(Fault("password_lag", *_patterns("PUT", path), times=times, reads=reads))

    # ---- decisions (called by the simulator) ------------------------------------------------

    def before(self, method: str, path: str) -> Decision:
        """Latency to add and the first failure rule that fires, consuming what fires."""
        latency = 0.0
        with self._lock:
            for rule in self._live(("latency",), method, path):
                if self._draw(rule):
                    rule.hits += 1
                    latency += rule.seconds
            for rule in self._live(_PRE_KINDS, method, path):
                if rule.kind == "rate_limit":
                    wait = self._spend(rule)
                    if wait is not None:
                        rule.hits += 1
                        return Decision(latency, rule, wait)
                    continue
                if self._draw(rule):
                    rule.hits += 1
                    return Decision(latency, rule, rule.retry_after)
        return Decision(latency)

    def after_success(self, method: str, path: str) -> Fault | None:
        """The commit-then-fail rule that turns this successful answer into a failure, if any."""
        with self._lock:
            for rule in self._live(("commit_then_fail",), method, path):
                if self._draw(rule):
                    rule.hits += 1
                    return rule
        return None

    def lag_for_create(self, method: str, path: str) -> int:
        return self.lag_for("user_lag", method, path)

    def lag_for(self, kind: Literal["user_lag", "password_lag"], method: str, path: str) -> int:
        """Reads to lag for a write that just succeeded (0 when no rule matches)."""
        with self._lock:
            for rule in self._live((kind,), method, path):
                rule.hits += 1
                return rule.reads
        return 0

    def _live(self, kinds: tuple[FaultKind, ...], method: str, path: str) -> Iterator[Fault]:
        """Rules of these kinds that match the request and are not used up (hold the lock)."""
        return (r for r in self._rules if r.kind in kinds and not r.exhausted and r.matches(method, path))

    def _draw(self, rule: Fault) -> bool:
        return rule.rate >= 1.0 or (rule.rate > 0.0 and self._rng.random() < rule.rate)

    def _spend(self, rule: Fault) -> int | None:
        now = self._monotonic()
        if rule._window_start is None or now - rule._window_start >= rule.window_s:
            rule._window_start = now
            rule._window_count = 0
        rule._window_count += 1
        if rule._window_count <= rule.limit:
            return None
        if rule.retry_after is not None:
            return rule.retry_after
        return max(1, math.ceil(rule._window_start + rule.window_s - now))


def _patterns(method: str | None, path: str | None) -> tuple[re.Pattern[str] | None, re.Pattern[str] | None]:
    return (
        re.compile(method, re.IGNORECASE) if method is not None else None,
        re.compile(path) if path is not None else None,
    )


def parse_rate_limit(spec: str) -> tuple[int, float]:
    """Parse the CLI form `N/60s` (also `N/500ms`, `N/2m`, bare `N` = per 60 s)."""
    match = re.fullmatch(r"\s*(\d+)\s*(?:/\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*)?", spec)
    if match is None:
        raise ValueError(f"rate limit {spec!r} is not of the form N/60s")
    budget = int(match.group(1))
    if match.group(2) is None:
        return budget, 60.0
    amount = float(match.group(2))
    unit = match.group(3) or "s"
    window = amount / 1000.0 if unit == "ms" else amount * 60.0 if unit == "m" else amount
    if window <= 0:
        raise ValueError("rate limit window must be positive")
    return budget, window
