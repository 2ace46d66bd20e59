"""Aiven API simulator: a stateful fake of the API subset in /work/shared/aiven-api.md.

Use it in-process through httpx (`FakeAiven().mock_transport()`) or over real HTTP on loopback
(`with fake.serve() as server: ... server.base_url`), or from the shell with
`aivenator fake-aiven --port 8900`. Both transports share one state and one request log.

Default seed (`FakeAiven.with_default_seed()`, and `aivenator fake-aiven` without `--seed`),
every service RUNNING:

- project `dev-nais-dev`:
  - `kafka` (Kafka, Schema Registry enabled),
  - `opensearch-team-a-logs` (OpenSearch with Dashboards; namespace `team-a`, instance `logs`),
  - `legacy-search` (OpenSearch, legacy name without the `opensearch-<ns>-` prefix, no Dashboards),
  - `valkey-team-a-cache` (Valkey with a replica),
  - `valkey-team-a-sessions` (Valkey, no replica);
- project `nav-prod`:
  - `nav-prod-kafka` (Kafka named `<project>-kafka`, Schema Registry enabled).

Every service has its built-in admin user of type `primary` (`avnadmin`; `default` for Valkey).
Kafka services carry the `avnadmin` admin ACL on topic `*` (id `default`) and two Schema
Registry write ACLs for `avnadmin` (`Config:` and `Subject:*`). OpenSearch ACL configs start as
`{"acls": [], "enabled": false, "extendedAcl": false}`.

Choices where the real API is UNVERIFIED (aiven-api.md §9): missing user is 404
`Service user does not exist`; missing ACL id is 404 `ACL entry does not exist`; a user
operation on a service whose state is not RUNNING/REBALANCING is 503
`Service <name> is not running (state <STATE>)`; deleting the built-in admin is 400; reset
changes only the password (never the certificate); duplicate Kafka ACLs are accepted; OpenSearch
ACL PUT replaces `acls` when present; a Valkey user created without `access_control` gets
`+@all` on keys `*` and channels `*`. With `redact_by_default=True`, GETs without
`include_secrets=true` show `<redacted>` for passwords, private keys and credentials embedded in
service URIs; PUT answers always redact; POST create always answers in plaintext. The
OpenSearch ACL is also served under the legacy `/elasticsearch/acl` path (wrapper
`elasticsearch_acl_config`) that the `avn` client still uses.
"""

from aivenator.adapters.fakes.aiven.core import REDACTED, Drop, FakeAiven, LoggedRequest, Reply
from aivenator.adapters.fakes.aiven.faults import Fault, FaultInjector, parse_rate_limit
from aivenator.adapters.fakes.aiven.seed import DEFAULT_SEED, ProjectSeed, Seed, ServiceSeed, load_seed
from aivenator.adapters.fakes.aiven.server import FakeAivenServer

__all__ = [
    "DEFAULT_SEED",
    "REDACTED",
    "Drop",
    "FakeAiven",
    "FakeAivenServer",
    "Fault",
    "FaultInjector",
    "LoggedRequest",
    "ProjectSeed",
    "Reply",
    "Seed",
    "ServiceSeed",
    "load_seed",
    "parse_rate_limit",
]
