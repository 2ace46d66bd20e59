"""The adaptive Aiven request rate (aivenator.domain.rate_limit): AIMD arithmetic, properties."""

from __future__ import annotations

import heapq
import itertools
import math
from dataclasses import replace

import pytest
from aivenator.domain import rate_limit
from aivenator.domain.rate_limit import AimdRate, AimdTuning
from hypothesis import given
from hypothesis import strategies as st

# An event: (seconds since the previous event, what happened, Retry-After for throttles).
events = st.lists(
    st.tuples(
        st.floats(min_value=0.0, max_value=5.0, allow_nan=False),
        st.sampled_from(["acquire", "success", "throttle", "pause"]),
        st.floats(min_value=0.0, max_value=30.0, allow_nan=False),
    ),
    max_size=200,
)
ceilings = st.one_of(st.none(), st.floats(min_value=0.1, max_value=1000.0, allow_nan=False))
fractions = st.floats(min_value=0.05, max_value=0.95)
tunings = st.one_of(
    st.just(AimdTuning()),
    st.builds(
        lambda floor, probe, settle, band, decrease, repeat, deep, margin, hold, burst_seconds, evidence: AimdTuning(
            floor=floor,
            probe=probe,
            settle=settle,
            band=band,
            decrease=decrease,
            repeat_decrease=repeat,
            deep=deep * min(decrease, repeat),
            margin=margin,
            hold=hold,
            burst_seconds=burst_seconds,
            evidence=evidence,
        ),
        st.floats(min_value=0.01, max_value=5.0),
        st.floats(min_value=0.0, max_value=1.0),
        st.floats(min_value=0.0, max_value=1.0),
        st.floats(min_value=1.0, max_value=2.0),
        fractions,
        fractions,
        st.floats(min_value=0.01, max_value=1.0),
        st.floats(min_value=0.05, max_value=1.0),
        st.floats(min_value=0.0, max_value=3.0),
        st.floats(min_value=0.1, max_value=5.0),
        st.integers(min_value=1, max_value=10),
    ),
)


def run(
    limiter: AimdRate, steps: list[tuple[float, str, float]]
) -> list[tuple[AimdRate, AimdRate, float, str, float]]:
    """Apply the events; return (before, after, now, kind, argument) for each."""
    now = 0.0
    seen = []
    for delta, kind, arg in steps:
        now += delta
        before = limiter
        match kind:
            case "acquire":
                limiter, _ = rate_limit.acquire(limiter, now)
            case "success":
                limiter = rate_limit.on_success(limiter, now)
            case "throttle":
                limiter = rate_limit.on_throttle(limiter, now, arg)
            case _:
                limiter = rate_limit.pause(limiter, now + arg)
        seen.append((before, limiter, now, kind, arg))
    return seen


@given(ceilings, st.integers(min_value=1, max_value=50), tunings, events)
def test_the_rate_stays_between_floor_and_ceiling(
    ceiling: float | None, burst: int, tuning: AimdTuning, steps: list[tuple[float, str, float]]
) -> None:
    limiter = rate_limit.start(ceiling, burst, tuning)
    for _, after, _, kind, _ in run(limiter, steps):
        if ceiling is None:
            assert after.current is None
        else:
            assert after.current is not None
            assert after.floor <= after.current <= ceiling
            assert 0.0 <= after.tokens <= burst
            if kind == "acquire":  # the bucket never holds more than burst_seconds of the rate
                assert after.tokens <= max(1.0, after.current * tuning.burst_seconds) + 1e-9


@given(ceilings, tunings, events)
def test_retry_after_is_always_honoured_and_never_shortened(
    ceiling: float | None, tuning: AimdTuning, steps: list[tuple[float, str, float]]
) -> None:
    limiter = rate_limit.start(ceiling, tuning=tuning)
    for before, after, now, kind, arg in run(limiter, steps):
        assert after.paused_until >= before.paused_until
        if kind == "throttle":
            assert after.paused_until >= now + arg
        _, wait = rate_limit.acquire(after, now)
        if now < after.paused_until:
            assert wait == pytest.approx(after.paused_until - now)


@given(st.floats(min_value=1.0, max_value=500.0), tunings, events)
def test_throttles_only_lower_and_successes_only_raise(
    ceiling: float, tuning: AimdTuning, steps: list[tuple[float, str, float]]
) -> None:
    limiter = rate_limit.start(ceiling, tuning=tuning)
    for before, after, now, kind, _ in run(limiter, steps):
        assert before.current is not None and after.current is not None
        if kind == "throttle":
            assert after.current <= before.current
            if now >= before.decreased_at + tuning.hold and before.current > before.floor:
                # a new episode always lowers the rate, whatever was measured
                assert after.current < before.current
        elif kind == "success":
            assert after.current >= before.current
        else:
            assert after.current == before.current


@given(
    st.floats(min_value=1.0, max_value=200.0),
    st.integers(min_value=1, max_value=40),
    st.floats(min_value=0.5, max_value=30.0),
)
def test_grants_never_exceed_burst_plus_rate_times_time(ceiling: float, burst: int, span: float) -> None:
    limiter = rate_limit.start(ceiling, burst)
    now, granted = 0.0, 0
    while now <= span:
        limiter, wait = rate_limit.acquire(limiter, now)
        if wait == 0.0:
            granted += 1
        else:
            now += wait
    assert granted <= burst + ceiling * span + 1


def test_one_throttle_episode_decreases_once_and_the_rate_climbs_back() -> None:
    limiter = rate_limit.start(40.0, tuning=AimdTuning(increase=1.0, probe=1.0, decrease=0.5, hold=1.0))
    limiter = rate_limit.on_throttle(limiter, 10.0, 1.0)
    # one token when the pause ends (Retry-After says a request may go then), not a burst
    assert limiter.current == 20.0 and limiter.paused_until == 11.0 and limiter.tokens == 1.0
    assert limiter.updated == 11.0
    # three more 429s of requests that were in flight: no further decrease
    for t in (10.01, 10.2, 10.9):
        limiter = rate_limit.on_throttle(limiter, t, 1.0)
    assert limiter.current == 20.0 and limiter.paused_until == pytest.approx(11.9)
    # a later episode decreases again
    assert rate_limit.on_throttle(limiter, 12.0, 1.0).current == 10.0
    # ~1 request/s per second of sending: 20 successes at 20/s add ~1 request/s
    for i in range(20):
        limiter = rate_limit.on_success(limiter, 12 + i / 20)
    assert 20.9 < (limiter.current or 0) < 21.1


def test_an_episode_soon_after_the_last_decrease_cuts_harder() -> None:
    limiter = rate_limit.start(
        100.0, tuning=AimdTuning(decrease=0.75, repeat_decrease=0.5, repeat_window=5.0, hold=1.0)
    )
    limiter = rate_limit.on_throttle(limiter, 0.0, 1.0)
    assert limiter.current == 75.0  # the first episode: x decrease
    limiter = rate_limit.on_throttle(limiter, 1.1, 1.0)
    assert limiter.current == 37.5  # 1.1 s later, the cut was not enough: x repeat_decrease
    limiter = rate_limit.on_throttle(limiter, 2.2, 1.0)
    assert limiter.current == 18.75
    limiter = rate_limit.on_throttle(limiter, 7.3, 1.0)
    assert limiter.current == pytest.approx(14.0625)  # 5.1 s of calm: back to x decrease


@pytest.mark.parametrize(
    ("rate", "per_second"),
    [(5.0, 0.1), (20.0, 0.4), (50.0, 0.5), (80.0, 0.5)],
)
def test_growth_is_increase_per_second_but_at_most_probe_times_the_rate(rate: float, per_second: float) -> None:
    # One second of answered requests at the current rate: the rate gains min(increase, probe x rate).
    limiter = replace(rate_limit.start(100.0, tuning=AimdTuning(increase=0.5, probe=0.02)), rate=rate)
    for i in range(round(rate)):
        limiter = rate_limit.on_success(limiter, i / rate)
    assert (limiter.current or 0) - rate == pytest.approx(per_second, rel=0.05)


def _answered(limiter: AimdRate, start: float, count: int, rate: float) -> AimdRate:
    """`count` answers arriving at `rate` per second from `start`."""
    for i in range(count):
        limiter = rate_limit.on_success(limiter, start + i / rate)
    return limiter


def test_the_server_rate_is_measured_from_one_429_to_the_next() -> None:
    limiter = rate_limit.on_throttle(rate_limit.start(100.0), 0.0, 1.0)
    # answers arriving during the pause were admitted before the 429: not counted
    limiter = _answered(limiter, 0.02, 4, 50.0)
    assert limiter.answered == 0
    limiter = _answered(limiter, 1.0, 20, 10.0)  # then 20 in two seconds
    assert limiter.answered == 20
    # the server's bucket was empty at both 429s: it granted 20 (and up to one more) in 3 s
    assert rate_limit.measured_rate(limiter, 3.0) == pytest.approx(20.5 / 3.0)


def test_an_idle_client_measures_nothing() -> None:
    limiter = rate_limit.on_throttle(rate_limit.start(10.0), 0.0, 1.0)
    limiter, _ = rate_limit.acquire(limiter, 1.0)
    limiter = _answered(limiter, 1.0, 5, 5.0)
    limiter, _ = rate_limit.acquire(limiter, 60.0)  # a minute without asking: the bucket overflowed
    assert limiter.unused > 100
    assert rate_limit.measured_rate(limiter, 61.0) is None
    # no deeper cut than the factor: 5 answers in a minute say nothing about the server
    assert limiter.current is not None
    assert rate_limit.on_throttle(limiter, 61.0, 1.0).current == pytest.approx(limiter.current * 0.75)


def _measured(limiter: AimdRate, pause_end: float, count: int, rate: float) -> AimdRate:
    """`count` answers at `rate` from the end of the pause, then a 429 (1 s Retry-After)."""
    limiter = _answered(limiter, pause_end, count, rate)
    return rate_limit.on_throttle(limiter, pause_end + count / rate, 1.0)


def test_a_measurement_over_mostly_sending_cuts_to_a_margin_below_it() -> None:
    tuning = AimdTuning(margin=0.9, deep=0.1)
    limiter = rate_limit.on_throttle(rate_limit.start(30.0, tuning=tuning), 0.0, 1.0)
    assert limiter.current == 22.5  # no measurement yet: x decrease
    limiter = replace(limiter, rate=16.0)
    limiter = _measured(limiter, 1.0, 80, 10.0)  # 8 s of sending against 1 s of pause
    assert limiter.trusted == pytest.approx(80.5 / 9.0)
    assert limiter.current == pytest.approx(0.9 * 80.5 / 9.0)  # deeper than x0.75 (about 12)


def test_a_measurement_over_mostly_pause_is_trusted_only_when_the_next_one_agrees() -> None:
    # The simulator at 5/s from a ceiling of 100/s: after each 1 s pause its bucket holds 5,
    # answered at the client's rate, then 429. From 75/s one episode says ~5/s; it could be a
    # server of 50/s whose bucket holds only 5 (then halving is right), so the rate halves.
    limiter = rate_limit.on_throttle(rate_limit.start(100.0), 0.0, 1.0)
    assert limiter.current == 75.0
    limiter = _measured(limiter, 1.0, 5, 75.0)
    first = 5.5 / (1.0 + 5 / 75.0)
    assert limiter.measured == pytest.approx(first)
    assert limiter.trusted is None and limiter.current == pytest.approx(37.5, rel=1e-3)
    # at 37.5/s the same: now trusted, the rate goes to 0.9 x 5.x at once (not 18.75, 9.4, ...)
    limiter = _measured(limiter, 2.0 + 5 / 75.0, 5, 37.5)
    second = 5.5 / (1.0 + 5 / 37.5)
    assert abs(second / first - 1) < 0.25
    assert limiter.trusted == pytest.approx(second)
    assert limiter.current == pytest.approx(0.9 * second)


def test_agreement_needs_evidence_and_never_cuts_below_deep() -> None:
    tuning = AimdTuning(evidence=2, deep=0.2)
    limiter = rate_limit.on_throttle(rate_limit.start(100.0, tuning=tuning), 0.0, 1.0)
    limiter = _measured(limiter, 1.0, 1, 75.0)  # one answer after the pause, then 429
    limiter = _measured(limiter, 2.02, 1, 37.5)  # the same: agrees, but one answer is no evidence
    assert limiter.trusted is None and limiter.current == pytest.approx(18.75, rel=1e-3)
    limiter = _measured(limiter, 3.06, 2, 18.75)  # two answers, but disagreeing (2.26 vs 1.46)
    assert limiter.trusted is None and limiter.current == pytest.approx(9.375, rel=1e-2)
    before = limiter.current
    assert before is not None
    limiter = _measured(limiter, 4.17, 2, 9.375)  # two again, agreeing: trusted
    assert limiter.trusted is not None
    assert 0.9 * limiter.trusted < 0.2 * before
    assert limiter.current == pytest.approx(0.2 * before, rel=1e-2)  # not below deep x rate


def test_growth_is_slow_just_above_the_trusted_server_rate() -> None:
    tuning = AimdTuning(probe=0.02, settle=0.005, band=1.15)
    base = replace(rate_limit.start(100.0, tuning=tuning), trusted=10.0)

    def one_second_from(rate: float) -> float:
        limiter = _answered(replace(base, rate=rate), 0.0, round(rate), rate)
        assert limiter.current is not None
        return limiter.current - rate

    assert one_second_from(9.0) == pytest.approx(0.02 * 9.0, rel=0.05)  # below it: probe
    assert one_second_from(11.0) == pytest.approx(0.005 * 11.0, rel=0.05)  # just above: settle
    assert one_second_from(12.0) == pytest.approx(0.02 * 12.0, rel=0.05)  # past the band: probe


def test_the_bucket_holds_about_a_second_of_the_current_rate() -> None:
    limiter = replace(rate_limit.start(50.0, 20), rate=5.0)
    limiter, _ = rate_limit.acquire(limiter, 0.0)
    limiter, _ = rate_limit.acquire(limiter, 100.0)  # idle: the bucket fills to 5 tokens, not 20
    assert limiter.tokens == pytest.approx(4.0)
    assert replace(rate_limit.start(0.5, 20), rate=0.5).capacity == 1.0


def test_a_fresh_limiter_sends_one_request_at_once_then_paces() -> None:
    # Not its whole burst: workers starting together would all be in flight when the server's
    # bucket runs out, and each would be answered 429 (1-3 extra 429s at 5/s in the benchmark).
    limiter = rate_limit.start(100.0, 10)
    granted = []
    for tick in range(0, 50):
        now = tick / 1000
        for _worker in range(4):
            limiter, wait = rate_limit.acquire(limiter, now)
            if wait == 0.0:
                granted.append(now)
    assert granted == pytest.approx([0.0, 0.01, 0.02, 0.03, 0.04])


def test_after_a_pause_one_request_goes_then_the_rate_resumes() -> None:
    limiter = rate_limit.on_throttle(rate_limit.start(10.0), 0.0, 2.0)
    grants = []
    for tick in range(2000, 2300):
        now = tick / 1000
        limiter, wait = rate_limit.acquire(limiter, now)
        if wait == 0.0:
            grants.append(now)
    # 2.0, then every 1/7.5 s: no burst of queued requests when Retry-After ends
    assert grants == pytest.approx([2.0, 2.134, 2.267], abs=0.0015)


def _discover(
    limit: float,
    ceiling: float = 100.0,
    senders: int = 4,
    seconds: float = 40.0,
    server_burst: int | None = None,
) -> tuple[float, float]:
    """A discrete-event model of `benchmarks/adaptive.py` on a simulated clock: `senders` loop
    acquire -> send -> answer; the server is a token bucket of `limit`/s holding `server_burst`
    (default: one second's worth, as the simulator's) that answers 429 with a whole-second
    Retry-After 2 ms after sending, and 2xx after 20 ms; the client learns of each answer only
    when it arrives, so requests sent meanwhile are in flight. Returns (answered/s after a 10 s
    warm-up, share of requests answered 429). It reproduces the benchmark closely: at 5/s the
    same number of 429s at the same moments within 0.2 s, and the same throughput within
    0.01/s: with the old policy 9 429s, three of them at the start (the benchmark: 7 to 9), with
    this one 4, at 0.05, 1.12, 2.25 and 31.94 s (the benchmark: 0.049, 1.118, 2.253, 31.939)."""
    limiter = rate_limit.start(ceiling, max(1, int(ceiling // 10)))
    size = server_burst or max(1, math.ceil(limit))
    tokens, refilled = float(size), 0.0
    # (time, sequence, what, who, Retry-After); all senders start together
    events = [(0.0, i, "send", i, 0) for i in range(senders)]
    sequence = itertools.count(senders)
    answered_late = throttled = sent = 0
    while events:
        now, _, what, who, retry_after = heapq.heappop(events)
        if now > seconds:
            break
        if what == "answered":
            limiter = rate_limit.on_success(limiter, now)
        elif what == "throttled":
            limiter = rate_limit.on_throttle(limiter, now, retry_after)
        else:
            limiter, wait = rate_limit.acquire(limiter, now)
            if wait > 0:
                heapq.heappush(events, (now + max(wait, 0.001), next(sequence), "send", who, 0))
                continue
            sent += 1
            tokens, refilled = min(size, tokens + (now - refilled) * limit), now
            if tokens >= 1.0:
                tokens -= 1.0
                answered_late += now >= 10.0
                heapq.heappush(events, (now + 0.02, next(sequence), "answered", who, 0))
            else:
                throttled += 1
                wait = math.ceil((1.0 - tokens) / limit)
                heapq.heappush(events, (now + 0.002, next(sequence), "throttled", who, wait))
            continue
        heapq.heappush(events, (now + 0.0005, next(sequence), "send", who, 0))
    return answered_late / (seconds - 10.0), throttled / max(1, sent)


@pytest.mark.parametrize(
    ("limit", "least", "most_429"),
    [
        # issue 12's follow-up targets: at 5/s, <= 2.5 % 429s and >= 4.3/s; at 20/s and 50/s no
        # worse than >= 0.9 x the limit and <= 2 % 429s
        (5.0, 4.3, 0.025),
        (20.0, 18.0, 0.02),
        (50.0, 45.0, 0.02),
        # far below the ceiling, only ~80 requests in the run: the issue's own targets
        (2.0, 1.6, 0.075),
    ],
)
def test_a_hidden_server_limit_is_found_with_few_429s(limit: float, least: float, most_429: float) -> None:
    # Starting from a ceiling of 100/s, far above the limit.
    throughput, share_429 = _discover(limit)
    assert throughput >= least
    assert share_429 <= most_429


@pytest.mark.parametrize(("limit", "server_burst"), [(20.0, 1), (20.0, 2), (40.0, 1), (50.0, 10), (50.0, 5)])
def test_a_server_bucket_smaller_than_its_refill_during_a_pause_is_not_starved(
    limit: float, server_burst: int
) -> None:
    # What the server answers from one 429 to the next is then less than its rate (its bucket
    # overflows during the Retry-After pause), so the measurement is low; it must not collapse
    # the rate (cutting to it at once gave 0.18 x the limit at 20/s with a bucket of 1).
    throughput, share_429 = _discover(limit, server_burst=server_burst)
    assert throughput >= 0.65 * limit
    assert share_429 <= 0.05


def test_unlimited_only_pauses() -> None:
    limiter = rate_limit.start(None)
    assert rate_limit.acquire(limiter, 0.0)[1] == 0.0
    limiter = rate_limit.on_throttle(limiter, 1.0, 2.0)
    assert limiter.current is None and rate_limit.acquire(limiter, 2.0)[1] == pytest.approx(1.0)
    assert rate_limit.acquire(limiter, 3.0)[1] == 0.0


@pytest.mark.parametrize(
    "bad",
    [
        {"ceiling": 0.0},
        {"ceiling": 1.0, "burst": 0},
        {"decrease": 1.0},
        {"repeat_decrease": 0.0},
        {"probe": -0.1},
        {"deep": 0.8},
        {"margin": 1.5},
        {"band": 0.9},
        {"burst_seconds": 0.0},
        {"evidence": 0},
    ],
)
def test_bad_tuning_is_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        if "ceiling" in bad:
            AimdRate(**bad)  # type: ignore[arg-type]  # the dict's float values stand for each keyword's own type
        else:
            AimdTuning(**bad)  # type: ignore[arg-type]


def test_paused_forever_is_representable() -> None:
    assert rate_limit.start(1.0).paused_until == -math.inf
