"""The shared OpenSearch ACL document (aiven-api.md §5.4): read, and per-user edits done as a
verified read-modify-write, since Aiven offers no compare-and-set on it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping

from aivenator.adapters.aiven_facts import AivenFacts
from aivenator.adapters.aiven_transport import AivenTransport, api_path
from aivenator.adapters.aiven_wire import acl_document, acl_entries, entry_rules, parse_acl_config, rules_body
from aivenator.domain.facts import AivenError, OpenSearchAclConfig, OpenSearchRule, Throttled, Unavailable
from aivenator.domain.opensearch_acl import user_absent, user_rules_hold, with_user_rules, without_user
from returns.result import Failure, Result, Success


class AivenOpenSearchAcl:
    """OpenSearch ACL calls over a shared `AivenTransport`. Thread-safe: one writer per
    (project, service) inside this process."""

    def __init__(self, transport: AivenTransport, facts: AivenFacts) -> None:
        self._t = transport
        self._facts = facts
        self._acl_locks: dict[tuple[str, str], threading.Lock] = {}
        self._acl_locks_guard = threading.Lock()

    def get_acl_config(self, project: str, service: str) -> Result[OpenSearchAclConfig, AivenError]:
        result = self._read_acl(project, service, self._t.deadline()).bind(
            lambda doc: self._t.decode("ServiceOpenSearchAclGet", lambda: parse_acl_config(doc))
        )
        self._facts.invalidate_on(project, service, result)
        return result

    def put_user_rules(
        self, project: str, service: str, username: str, rules: tuple[OpenSearchRule, ...]
    ) -> Result[None, AivenError]:
        """Set `username`'s rules in the shared ACL document and enable it, keeping others' entries.

        Aiven offers no compare-and-set on this document, so this is a verified read-modify-write:
        one writer per (project, service) inside this process (a lock), and across processes a
        protocol: never write a snapshot older than half the settle time; after writing, re-read
        and check that our entry is there and every other entry we saw still is; wait the settle
        time and check again (a writer that read before our write has sent its stale snapshot by
        then); on any failed check, read and write again.

        Writes use POST (`ServiceOpenSearchAclSet`), the documented full replacement, with the
        whole document we read (unknown fields such as the legacy `extendedAcl` carried along).
        PUT would also work with a full body, but whether PUT merges or replaces `acls` is not
        verified (aiven-api.md §5.4), and a full replace is what makes the result checkable.
        """
        want = rules_body(rules)

        def change(entries: list[dict[str, object]]) -> list[dict[str, object]] | None:
            return with_user_rules(entries, username, want, entry_rules)

        def ours_ok(entries: list[dict[str, object]]) -> bool:
            return user_rules_hold(entries, username, want, entry_rules)

        return self._acl_rmw(project, service, username, change, ours_ok, enable=True)

    def remove_user_rules(self, project: str, service: str, username: str) -> Result[None, AivenError]:
        """Remove `username`'s entry from the shared ACL document (absent is success); same verified
        read-modify-write as `put_user_rules`, leaving `enabled` as it is."""

        def change(entries: list[dict[str, object]]) -> list[dict[str, object]] | None:
            return without_user(entries, username)

        def ours_ok(entries: list[dict[str, object]]) -> bool:
            return user_absent(entries, username)

        return self._acl_rmw(project, service, username, change, ours_ok, enable=False)

    def _acl_rmw(
        self,
        project: str,
        service: str,
        username: str,
        change: Callable[[list[dict[str, object]]], list[dict[str, object]] | None],
        ours_ok: Callable[[list[dict[str, object]]], bool],
        *,
        enable: bool,
    ) -> Result[None, AivenError]:
        deadline = self._t.deadline()
        lock = self._acl_lock(project, service)
        if not lock.acquire(timeout=max(0.0, deadline - self._t.clock())):
            return Failure(Unavailable(f"opensearch acl of service {service} is busy in this process"))
        try:
            result = self._acl_rounds(project, service, username, change, ours_ok, enable, deadline)
        finally:
            lock.release()
        self._facts.invalidate_on(project, service, result)
        return result

    def _acl_rounds(
        self,
        project: str,
        service: str,
        username: str,
        change: Callable[[list[dict[str, object]]], list[dict[str, object]] | None],
        ours_ok: Callable[[list[dict[str, object]]], bool],
        enable: bool,
        deadline: float,
    ) -> Result[None, AivenError]:
        settle = self._t.retry.acl_settle
        max_age = settle / 2
        last: AivenError = Unavailable(
            f"opensearch acl of service {service}: concurrent writers kept winning"
        )
        for round_no in range(1, max(1, self._t.retry.acl_attempts) + 1):
            if round_no > 1:
                wait = self._t.backoff(round_no - 1) / 4
                if self._t.clock() + wait > deadline:
                    return Failure(last)
                self._t.sleep(wait)
            read = self._read_acl(project, service, deadline)
            if isinstance(read, Failure):
                return Failure(read.failure())
            read_at = self._t.clock()
            doc = read.unwrap()
            entries = self._decode_entries(doc)
            if isinstance(entries, Failure):
                return Failure(entries.failure())
            before = entries.unwrap()
            after = change(before)
            enabled_ok = doc.get("enabled") is True or not enable
            if after == before and enabled_ok:
                return Success(None)
            assert after is not None
            others = {str(e.get("username")) for e in before if e.get("username") != username}
            if settle > 0 and self._t.clock() - read_at > max_age:
                continue  # stale snapshot: writing it could undo another process's change
            new_doc = {**doc, "acls": after, "enabled": True if enable else bool(doc.get("enabled", False))}
            path = api_path(
                "/v1/project/{project}/service/{service}/opensearch/acl", project=project, service=service
            )
            # Not retried inside `_request`: a late repeat would write an old snapshot. The next
            # round reads again instead.
            written = self._t.request(
                "ServiceOpenSearchAclSet",
                "POST",
                path,
                deadline,
                body={"opensearch_acl_config": new_doc},
                idempotent=False,
            )
            if isinstance(written, Failure):
                error = written.failure()
                if not isinstance(error, Unavailable | Throttled):
                    return Failure(error)
                last = error
                continue
            checks = 2 if settle > 0 else 1
            verified = True
            for check_no in range(checks):
                if check_no > 0:
                    if self._t.clock() + settle > deadline:
                        return Failure(
                            Unavailable(f"opensearch acl of service {service}: no time to verify write")
                        )
                    self._t.sleep(settle)
                again = self._read_acl(project, service, deadline)
                if isinstance(again, Failure):
                    return Failure(again.failure())
                seen = self._decode_entries(again.unwrap())
                if isinstance(seen, Failure):
                    return Failure(seen.failure())
                now_entries = seen.unwrap()
                names = {str(e.get("username")) for e in now_entries}
                if not (ours_ok(now_entries) and others <= names):
                    verified = False
                    break
            if verified:
                self._t.log.info(
                    "aiven_opensearch_acl_written", project=project, service=service, username=username
                )
                return Success(None)
            self._t.log.info(
                "aiven_opensearch_acl_lost_race",
                project=project,
                service=service,
                username=username,
                round=round_no,
            )
        return Failure(last)

    def _read_acl(self, project: str, service: str, deadline: float) -> Result[dict[str, object], AivenError]:
        path = api_path(
            "/v1/project/{project}/service/{service}/opensearch/acl", project=project, service=service
        )
        return self._t.request("ServiceOpenSearchAclGet", "GET", path, deadline).bind(
            lambda b: self._t.decode("ServiceOpenSearchAclGet", lambda: _checked_acl_document(b))
        )

    def _decode_entries(self, doc: Mapping[str, object]) -> Result[list[dict[str, object]], AivenError]:
        return self._t.decode("ServiceOpenSearchAclGet", lambda: acl_entries(doc))

    def _acl_lock(self, project: str, service: str) -> threading.Lock:
        with self._acl_locks_guard:
            return self._acl_locks.setdefault((project, service), threading.Lock())


def _checked_acl_document(body: object) -> dict[str, object]:
    """The raw ACL document, after checking it parses (so later edits of it cannot fail)."""
    doc = acl_document(body)
    parse_acl_config(doc)
    return doc
