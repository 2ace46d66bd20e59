"""Size limits on what the operator accepts and what it writes back.

The CRD (`deploy/crds/aivenapplications.yaml`) carries the input limits as `maxItems` /
`maxLength`; `aivenator.domain.parse` applies the same ones to objects that bypass the schema
(objects stored before the limits existed, other API versions, the `render` command), and
`tests/unit/test_limits.py` holds the CRD and these constants equal. The Go operator's CRD had
no limits, so each is chosen well above anything a real application uses, and the reason is
written next to it (here and in the CRD's descriptions).

The output limits bound the status and the events of one synchronization whatever the spec:
the status of the largest admitted spec stays far below etcd's 1.5 MiB request limit.
"""

from __future__ import annotations

#: Valkey entries in one AivenApplication. Real applications use one to three; 64 leaves room
#: for a team that keeps one instance per tenant while bounding one pass's Aiven requests.
MAX_VALKEY = 64

#: Any Kubernetes object name (`secretName`, the deprecated `spec.secretName`): a DNS-1123
#: subdomain is at most 253 characters.
MAX_SECRET_NAME = 253

#: Aiven project (`kafka.pool`) and instance names. Aiven itself refuses names past 63/64
#: characters (and the parser refuses instance names past 63 with a specific message); 253,
#: the longest Kubernetes name, leaves the precise complaint to the parser.
MAX_NAME = 253

#: `expiresAt`: RFC 3339 with nanoseconds and an offset is 35 characters.
MAX_TIMESTAMP = 64

#: Per-instance `ValkeyReady-<instance>` conditions are written for at most this many Valkey
#: entries; past it a single `ValkeyReady` condition summarises them all.
MAX_INSTANCE_CONDITIONS = 8

#: Conditions in a status (the CRD's `maxItems`). The operator writes at most
#: `MAX_OWN_CONDITIONS` (see `aivenator.domain.sync`); other writers' conditions are kept up to
#: this bound.
MAX_CONDITIONS = 64

#: Sections named in one condition message before "... and N more".
MAX_LISTED_IN_MESSAGE = 8

#: Characters in one condition message (metav1.Condition allows 32768); longer ones are cut
#: with a marker.
MAX_CONDITION_MESSAGE = 2048

#: Events one synchronization pass may record; past it one event summarises the rest.
MAX_EVENTS_PER_PASS = 10

#: Characters in one event message (the Events API refuses past 1 KiB).
MAX_EVENT_MESSAGE = 1000


def truncate(text: str, limit: int) -> str:
    """`text`, cut to at most `limit` characters with a visible marker when it was longer."""
    if len(text) <= limit:
        return text
    marker = " ... (truncated)"
    return text[: max(0, limit - len(marker))] + marker


__all__ = [
    "MAX_CONDITIONS",
    "MAX_CONDITION_MESSAGE",
    "MAX_EVENTS_PER_PASS",
    "MAX_EVENT_MESSAGE",
    "MAX_INSTANCE_CONDITIONS",
    "MAX_LISTED_IN_MESSAGE",
    "MAX_NAME",
    "MAX_SECRET_NAME",
    "MAX_TIMESTAMP",
    "MAX_VALKEY",
    "truncate",
]
