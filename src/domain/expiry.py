"""When AivenApplications expire and when the operator must wake up next.

A purely computational module. `expired` lists the applications whose `spec.expiresAt` has
passed (the shell deletes them); `next_wakeup` tells the shell when to look again, so expiry
and certificate renewal happen at their time, not at the next unrelated event.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import TypeVar

from aivenator.domain.application import AivenApplication

K = TypeVar("K")


def is_expired(app: AivenApplication, now: datetime) -> bool:
    """Whether `app` must be deleted now: its `expiresAt` is at or before `now` and it is not
    already being deleted."""
    return app.expires_at is not None and app.expires_at <= now and not app.deletion_requested


def expired(apps: Iterable[AivenApplication], now: datetime) -> tuple[tuple[str, str], ...]:
    """(namespace, name) of every application whose `expiresAt` is at or before `now`, sorted.

    Applications already being deleted are left out: deleting them again achieves nothing.
    """
    return tuple(
        sorted(
            (app.namespace, app.name)
            for app in apps
            if is_expired(app, now)
        )
    )


def renewal_time(not_valid_after: datetime, renewal_window: timedelta) -> datetime:
    """When a certificate valid until `not_valid_after` enters its renewal window."""
    return not_valid_after - renewal_window


def next_wakeup(
    apps: Iterable[AivenApplication],
    now: datetime,
    cert_expiries: Mapping[K, datetime] | None = None,
    renewal_window: timedelta = timedelta(0),
) -> datetime | None:
    """The earliest future moment something time-driven must happen, or None if nothing will.

    Candidates: every `expiresAt` after `now` (of applications not being deleted), and for every
    certificate (keyed however the shell likes, e.g. by (namespace, secret name)) the start of its
    renewal window if that lies after `now`. Moments already passed are not candidates: they are
    handled right away by `expired` and `sync.needs_sync`, and retries of those are governed by
    their own backoff, so returning a past time would only make the shell spin.
    """
    candidates = [
        app.expires_at
        for app in apps
        if app.expires_at is not None and app.expires_at > now and not app.deletion_requested
    ]
    for not_after in (cert_expiries or {}).values():
        renew_at = renewal_time(not_after, renewal_window)
        if renew_at > now:
            candidates.append(renew_at)
    return min(candidates, default=None)


def worth_scheduling(moment: datetime | None, now: datetime, resync_period: timedelta) -> datetime | None:
    """`moment` if a wake-up must be scheduled for it, None when the periodic resync (every
    `resync_period`) re-examines the application before then anyway and will schedule it when
    it is near. Certificate renewals are months away: a timer per application for each of them
    would only cost memory (a queue entry per application) and change nothing."""
    if moment is None or moment - now > resync_period:
        return None
    return moment
