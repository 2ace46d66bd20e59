"""The keyed work queue: dedup, exclusivity, backoff, wake-ups, shutdown (fake clock, no sleeps)."""

from __future__ import annotations

import threading

from aivenator.entrypoints.runtime.workqueue import Backoff, WorkQueue
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.clock import FakeClock


def make() -> tuple[WorkQueue[str], FakeClock]:
    clock = FakeClock()
    return WorkQueue(clock=clock.monotonic, backoff=Backoff(base=1.0, cap=60.0)), clock


def make_int() -> tuple[WorkQueue[int], FakeClock]:
    clock = FakeClock()
    return WorkQueue(clock=clock.monotonic, backoff=Backoff(base=1.0, cap=60.0)), clock


def test_a_key_added_many_times_is_queued_once() -> None:
    q, _ = make()
    for _ in range(5):
        q.add("ns/a")
    q.add("ns/b")
    assert len(q) == 2
    assert q.try_get() == "ns/a"
    assert q.try_get() == "ns/b"
    assert q.try_get() is None


def test_a_key_in_flight_is_not_handed_out_again_until_done() -> None:
    q, _ = make()
    q.add("k")
    assert q.try_get() == "k"
    q.add("k")  # changed while being processed
    assert q.try_get() is None
    q.done("k")
    assert q.try_get() == "k"  # processed again after
    q.done("k")
    assert q.is_idle()


def test_done_without_readd_leaves_nothing_to_do() -> None:
    q, _ = make()
    q.add("k")
    q.try_get()
    q.done("k")
    assert q.try_get() is None
    assert q.is_idle()


def test_add_after_waits_for_the_clock_and_earliest_wakeup_wins() -> None:
    q, clock = make()
    q.add_after("k", 30)
    q.add_after("k", 10)
    q.add_after("k", 50)
    assert q.try_get() is None
    assert q.next_wakeup() == 10
    clock.advance(9.9)
    assert q.try_get() is None
    clock.advance(0.1)
    assert q.try_get() == "k"
    q.done("k")
    clock.advance(100)
    assert q.try_get() is None  # the superseded 30 s / 50 s entries do not fire again


def test_backoff_grows_exponentially_to_the_cap_and_forget_resets() -> None:
    q, _ = make()
    delays = [q.add_rate_limited("k") for _ in range(9)]
    assert delays == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    assert q.failures("k") == 9
    q.forget("k")
    assert q.failures("k") == 0
    assert q.add_rate_limited("k") == 1


def test_backoff_honours_retry_after() -> None:
    q, clock = make()
    assert q.add_rate_limited("k", min_delay=42) == 42
    clock.advance(41)
    assert q.try_get() is None
    clock.advance(1)
    assert q.try_get() == "k"


def test_backoff_is_per_key() -> None:
    q, _ = make()
    for _ in range(4):
        q.add_rate_limited("a")
    assert q.add_rate_limited("b") == 1


def test_delayed_wakeups_do_not_make_the_queue_busy() -> None:
    q, _ = make()
    q.add_after("k", 3600)
    assert q.is_idle()
    assert q.delayed() == {"k": 3600}


def test_shutdown_unblocks_getters_and_refuses_new_work() -> None:
    q, _ = make()
    got: list[str | None] = []
    worker = threading.Thread(target=lambda: got.append(q.get()))
    worker.start()
    q.shutdown()
    worker.join(timeout=5)
    assert not worker.is_alive()
    assert got == [None]
    q.add("k")
    assert q.try_get() is None


def test_wait_inflight_after_shutdown() -> None:
    q, _ = make()
    q.add("k")
    assert q.try_get() == "k"
    q.shutdown()
    assert q.wait_inflight(0.01) is False
    q.done("k")
    assert q.wait_inflight(1) is True


def test_blocking_get_with_threads_never_runs_a_key_twice_at_once() -> None:
    q: WorkQueue[int] = WorkQueue()
    active: set[int] = set()
    overlap: list[int] = []
    processed: list[int] = []
    lock = threading.Lock()

    def work() -> None:
        while True:
            key = q.get()
            if key is None:
                return
            with lock:
                if key in active:
                    overlap.append(key)
                active.add(key)
            with lock:
                active.discard(key)
                processed.append(key)
            q.done(key)

    workers = [threading.Thread(target=work) for _ in range(4)]
    for w in workers:
        w.start()
    for i in range(500):
        q.add(i % 7)
    assert q.wait_idle(10)
    q.shutdown()
    for w in workers:
        w.join(timeout=5)
    assert overlap == []
    assert set(processed) == set(range(7))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["add", "get", "done", "after", "tick"]), st.integers(0, 3)), max_size=60
    )
)
def test_queue_invariants_under_any_sequence(ops: list[tuple[str, int]]) -> None:
    """No key is ever handed out while in flight; every added key is eventually handed out."""
    q, clock = make_int()
    in_flight: set[int] = set()
    owed: set[int] = set()  # added since last hand-out
    for op, key in ops:
        if op == "add":
            q.add(key)
            owed.add(key)
        elif op == "after":
            q.add_after(key, 5)
        elif op == "tick":
            clock.advance(5)
        elif op == "get":
            got = q.try_get()
            if got is not None:
                assert got not in in_flight
                in_flight.add(got)
                owed.discard(got)
        elif op == "done" and key in in_flight:
            in_flight.discard(key)
            q.done(key)
    for key in list(in_flight):
        q.done(key)
    clock.advance(10)
    drained: set[int] = set()
    while (got := q.try_get()) is not None:
        drained.add(got)
        q.done(got)
    assert owed <= drained
