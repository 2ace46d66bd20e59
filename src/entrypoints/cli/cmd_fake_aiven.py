"""`aivenator fake-aiven`: serve the Aiven API simulator on a loopback port until SIGINT/SIGTERM.

Prints `AIVEN_WEB_URL=<base url>` and `AIVEN_TOKEN=<token>` on stdout (the token is the
simulator's own, not a credential), then the seeded projects and services.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from datetime import timedelta
from types import FrameType

import yaml
from aivenator.adapters.fakes.aiven import DEFAULT_SEED, FakeAiven, Seed, load_seed, parse_rate_limit
from aivenator.entrypoints.cli import argtypes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=argtypes.port, default=8900, help="port to bind; 0 picks a free one (default 8900)"
    )
    parser.add_argument("--seed", metavar="FILE", help="YAML/JSON seed file (default: the built-in seed)")
    parser.add_argument("--token", default="fake-aiven-token", help="API token clients must send")
    parser.add_argument(
        "--redact",
        action="store_true",
        help="redact secrets unless include_secrets=true (Aiven's 2027 default)",
    )
    parser.add_argument(
        "--cert-days", type=argtypes.positive_int, default=365, help="validity of issued Kafka user certificates"
    )
    faults = parser.add_argument_group("fault injection (all deterministic given --fault-seed)")
    faults.add_argument("--fault-seed", type=argtypes.non_negative_int, default=0, help="seed for the share-of-requests faults")
    faults.add_argument("--latency-ms", type=argtypes.non_negative_float, default=0.0, help="added latency per request")
    parser.add_argument(
        "--response-time-ms",
        type=argtypes.non_negative_float,
        default=0.0,
        help="answer each request this long after it arrived, processing included (a server's response time)",
    )
    faults.add_argument(
        "--rate-limit", metavar="N/60s", help="allow N requests per window, then 429 + Retry-After"
    )
    faults.add_argument(
        "--server-rate-limit",
        type=argtypes.non_negative_float,
        metavar="R",
        help="hidden token-bucket limit of R requests/s (burst R): beyond it 429 + Retry-After",
    )
    faults.add_argument("--throttle-rate", type=argtypes.share, default=0.0, help="share of requests answered 429")
    faults.add_argument("--retry-after", type=argtypes.non_negative_int, default=1, help="Retry-After seconds for --throttle-rate")
    faults.add_argument("--error-rate", type=argtypes.share, default=0.0, help="share of requests answered 5xx")
    faults.add_argument("--error-status", type=argtypes.http_error_status, default=503, help="status for --error-rate (default 503)")
    faults.add_argument(
        "--reset-rate", type=argtypes.share, default=0.0, help="share of connections dropped with no answer"
    )
    faults.add_argument(
        "--timeout-rate", type=argtypes.share, default=0.0, help="share of requests that hang, then drop"
    )
    faults.add_argument("--hang-s", type=argtypes.non_negative_float, default=30.0, help="how long --timeout-rate requests hang")
    faults.add_argument(
        "--commit-then-fail-rate",
        type=argtypes.share,
        default=0.0,
        help="share of successful writes answered 500 anyway",
    )
    faults.add_argument("--user-lag", type=argtypes.non_negative_int, default=0, help="new users answer 404 to their first N GETs")
    faults.add_argument("--path", default=None, help="only fault requests whose path matches this regex")
    faults.add_argument("--method", default=None, help="only fault requests whose method matches this regex")


def build(args: argparse.Namespace) -> FakeAiven:
    """The simulator described by the parsed arguments (raises ValueError on bad values)."""
    for name in ("throttle_rate", "error_rate", "reset_rate", "timeout_rate", "commit_then_fail_rate"):
        value = getattr(args, name)
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"--{name.replace('_', '-')} must be between 0 and 1")
    seed: Seed = _load_seed(args.seed) if args.seed else DEFAULT_SEED
    fake = FakeAiven(
        args.token,
        redact_by_default=args.redact,
        seed=seed,
        cert_validity=timedelta(days=args.cert_days),
        fault_seed=args.fault_seed,
        server_rate_limit=args.server_rate_limit,
        response_time=args.response_time_ms / 1000.0,
    )
    where = {"method": args.method, "path": args.path}
    if args.latency_ms > 0:
        fake.faults.latency(args.latency_ms, **where)
    if args.rate_limit:
        budget, window = parse_rate_limit(args.rate_limit)
        fake.faults.rate_limit(budget, window, **where)
    if args.throttle_rate > 0:
        fake.faults.throttle(retry_after=args.retry_after, rate=args.throttle_rate, **where)
    if args.error_rate > 0:
        fake.faults.error(args.error_status, rate=args.error_rate, **where)
    if args.reset_rate > 0:
        fake.faults.reset(rate=args.reset_rate, **where)
    if args.timeout_rate > 0:
        fake.faults.timeout(hang_s=args.hang_s, rate=args.timeout_rate, **where)
    if args.commit_then_fail_rate > 0:
        fake.faults.commit_then_fail(
            rate=args.commit_then_fail_rate, method=args.method or "POST|PUT|DELETE", path=args.path
        )
    if args.user_lag > 0:
        fake.faults.user_lag(args.user_lag, path=args.path)
    return fake


def _load_seed(path: str) -> Seed:
    """The seed file, or a ValueError whose message names the file and what is wrong."""
    try:
        return load_seed(path)
    except OSError as exc:
        raise ValueError(f"--seed {path}: cannot read: {exc.strerror or type(exc).__name__}") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"--seed {path}: not UTF-8 text (offset {exc.start})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ValueError(f"--seed {path}: invalid YAML{where}") from None
    except ValueError as exc:  # JSON syntax and the seed's own checks
        raise ValueError(f"--seed {path}: {' '.join(str(exc).split())}") from None
    except (TypeError, AttributeError, KeyError):
        raise ValueError(f"--seed {path}: not a seed (want projects: {{<project>: {{services: ...}}}})") from None


def run(args: argparse.Namespace) -> int:
    try:
        fake = build(args)
    except (ValueError, OSError) as exc:
        print(f"aivenator fake-aiven: {exc}", file=sys.stderr)
        return 2
    try:
        server = fake.serve(args.host, args.port)
    except OSError as exc:
        print(
            f"aivenator fake-aiven: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr
        )
        return 1
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        print(f"AIVEN_WEB_URL={server.base_url}")
        print(f"AIVEN_TOKEN={fake.token}")
        for project, services in fake.projects().items():
            print(f"project {project}: {', '.join(services) or '(no services)'}")
        sys.stdout.flush()
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
