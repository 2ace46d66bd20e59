"""Hypothesis strategies shared by the domain tests: raw AivenApplication dicts (valid and
invalid), Aiven facts, users and TLS material."""

from __future__ import annotations

import datetime as dt
from functools import cache
from typing import Any

from aivenator.domain.application import Access, AivenApplication
from aivenator.domain.facts import Endpoint, ServiceFacts, ServiceType, ServiceUser
from aivenator.domain.parse import parse_application
from aivenator.domain.secrets import SectionInput
from aivenator.domain.services import all_sections
from aivenator.domain.services.base import ServiceConfig
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import strategies as st

ALLOWED_PROJECTS = frozenset({"dev-nais-dev", "nav-prod"})
MAIN_PROJECT = "dev-nais-dev"
CONFIG = ServiceConfig(MAIN_PROJECT)

_ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"


@st.composite
def dns_labels(draw: st.DrawFn, max_size: int = 63) -> str:
    """Lower-case DNS-1123 labels (namespaces, instances), biased towards `team` prefixes."""
    prefix = draw(st.sampled_from(["", "", "team", "team-", "nais-"]))
    body = draw(st.text(alphabet=_ALNUM + "-", min_size=0, max_size=max_size))
    label = (prefix + body)[:max_size].strip("-")
    first = draw(st.sampled_from(_ALNUM))
    label = (first + label)[:max_size].rstrip("-")
    return label


@st.composite
def app_names(draw: st.DrawFn, namespace: str | None = None) -> str:
    """DNS-1123 subdomains (≤253), often starting with the namespace, sometimes very long."""
    base = draw(dns_labels())
    if namespace is not None and draw(st.booleans()):
        base = f"{namespace}-{base}"
    if draw(st.integers(0, 9)) == 0:
        base = ".".join([base, *draw(st.lists(dns_labels(), min_size=1, max_size=4))])
    return base[:253].rstrip("-.")


access_values = st.sampled_from([None, *[a.value for a in Access]])
timestamps = st.datetimes(
    min_value=dt.datetime(2020, 1, 1), max_value=dt.datetime(2035, 1, 1), timezones=st.just(dt.UTC)
)


def rfc3339(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@st.composite
def raw_applications(draw: st.DrawFn) -> dict[str, Any]:
    """Valid AivenApplication objects in the API's dict shape."""
    namespace = draw(dns_labels())
    name = draw(app_names(namespace))
    spec: dict[str, Any] = {}
    used: set[str] = set()

    def secret_name() -> str:
        candidate = draw(dns_labels().filter(lambda s: s not in used))
        used.add(candidate)
        return candidate

    def with_access(d: dict[str, Any]) -> dict[str, Any]:
        access = draw(access_values)
        if access is not None:
            d["access"] = access
        return d

    if draw(st.booleans()):
        spec["kafka"] = {"pool": draw(st.sampled_from(sorted(ALLOWED_PROJECTS))), "secretName": secret_name()}
    if draw(st.booleans()):
        spec["openSearch"] = with_access({"instance": draw(dns_labels()), "secretName": secret_name()})
    instances = draw(st.lists(dns_labels(), max_size=3, unique=True))
    if instances:
        spec["valkey"] = [with_access({"instance": i, "secretName": secret_name()}) for i in instances]
    if draw(st.booleans()):
        spec["protected"] = draw(st.booleans())
    if draw(st.booleans()):
        spec["expiresAt"] = rfc3339(draw(timestamps))
    labels = {"app": name, "team": namespace}
    if draw(st.booleans()):
        labels["aiven.nais.io/secret-generation"] = str(draw(st.integers(0, 20)))
    annotations = {}
    if draw(st.booleans()):
        annotations["nais.io/deploymentCorrelationID"] = draw(st.uuids()).hex
    raw: dict[str, Any] = {
        "apiVersion": "aiven.nais.io/v1",
        "kind": "AivenApplication",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "generation": draw(st.integers(1, 10_000)),
            "uid": str(draw(st.uuids())),
            "resourceVersion": str(draw(st.integers(1, 10**9))),
            "labels": labels,
            "annotations": annotations,
        },
        "spec": spec,
    }
    if draw(st.booleans()):
        raw["status"] = {
            "synchronizationHash": draw(st.text(alphabet="0123456789abcdef", min_size=0, max_size=16))
        }
    return raw


def parse_valid(raw: dict[str, Any]) -> AivenApplication:
    return parse_application(raw, ALLOWED_PROJECTS).unwrap().app


#: Faults that can be injected into a valid app: (name, field path expected in the problems).
FAULTS: dict[str, str] = {
    "kafka_pool_not_allowed": "spec.kafka.pool",
    "kafka_secret_missing": "spec.kafka.secretName",
    "opensearch_access_unknown": "spec.openSearch.access",
    "opensearch_instance_empty": "spec.openSearch.instance",
    "opensearch_secret_invalid": "spec.openSearch.secretName",
    "valkey_secret_too_long": "spec.valkey[0].secretName",
    "valkey_duplicate_secret": "spec.valkey[1].secretName",
    "expires_unparseable": "spec.expiresAt",
    "protected_not_bool": "spec.protected",
    "valkey_not_list": "spec.valkey",
}


def inject_fault(raw: dict[str, Any], fault: str) -> None:
    spec = raw["spec"]
    if fault == "kafka_pool_not_allowed":
        spec["kafka"] = {"pool": "someone-elses-project", "secretName": "k-ok"}
    elif fault == "kafka_secret_missing":
        spec["kafka"] = {"pool": MAIN_PROJECT}
    elif fault == "opensearch_access_unknown":
        spec["openSearch"] = {"instance": "logs", "access": "superuser", "secretName": "os-ok"}
    elif fault == "opensearch_instance_empty":
        spec["openSearch"] = {"instance": "", "secretName": "os-ok"}
    elif fault == "opensearch_secret_invalid":
        spec["openSearch"] = {"instance": "logs", "secretName": "Not_A_Valid_Name"}
    elif fault == "valkey_secret_too_long":
        spec.setdefault(
            "valkey", [{"instance": "a", "secretName": "v-a"}, {"instance": "b", "secretName": "v-b"}]
        )
        spec["valkey"][0] = {"instance": "a", "secretName": "x" * 254}
    elif fault == "valkey_duplicate_secret":
        spec["valkey"] = [
            {"instance": "a", "secretName": "v-dup"},
            {"instance": "b", "secretName": "v-dup"},
        ]
    elif fault == "expires_unparseable":
        spec["expiresAt"] = "next tuesday"
    elif fault == "protected_not_bool":
        spec["protected"] = "yes"
    elif fault == "valkey_not_list":
        spec["valkey"] = {"instance": "a"}
    else:  # pragma: no cover
        raise ValueError(fault)


_COMPATIBLE = {
    # faults that cannot be combined because they write the same field
    frozenset({"valkey_secret_too_long", "valkey_duplicate_secret"}),
    frozenset({"valkey_secret_too_long", "valkey_not_list"}),
    frozenset({"valkey_duplicate_secret", "valkey_not_list"}),
    frozenset({"kafka_pool_not_allowed", "kafka_secret_missing"}),
    frozenset({"opensearch_access_unknown", "opensearch_instance_empty"}),
    frozenset({"opensearch_access_unknown", "opensearch_secret_invalid"}),
    frozenset({"opensearch_instance_empty", "opensearch_secret_invalid"}),
}


@st.composite
def invalid_applications(draw: st.DrawFn) -> tuple[dict[str, Any], frozenset[str]]:
    """A raw app with one or more injected faults, and the field paths that must be reported."""
    raw = draw(raw_applications())
    raw["spec"] = {}
    faults = draw(st.lists(st.sampled_from(sorted(FAULTS)), min_size=1, max_size=5, unique=True))
    chosen: list[str] = []
    for fault in faults:
        if any(frozenset({fault, other}) in _COMPATIBLE for other in chosen):
            continue
        chosen.append(fault)
    for fault in chosen:
        inject_fault(raw, fault)
    return raw, frozenset(FAULTS[f] for f in chosen)


# --- TLS material (EC keys: fast to make) ----------------------------------------------------


def _cert(
    cn: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    ca: bool,
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer[0] if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    return builder.sign(issuer[1] if issuer else key, hashes.SHA256())


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


@cache
def tls_material(index: int = 0) -> tuple[str, str, str]:
    """(ca_pem, client_cert_pem, client_key_pem), cached per index."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert(f"test-ca-{index}", ca_key, None, ca=True)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _cert(f"client-{index}", key, (ca.subject, ca_key), ca=False)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return _pem(ca), _pem(cert), key_pem


hosts = st.from_regex(r"\A[a-z][a-z0-9-]{0,20}\.example\.com\Z")
ports = st.integers(1, 65535)
endpoints = st.builds(Endpoint, hosts, ports)
passwords = st.text(alphabet=_ALNUM + "ABCDEFGHIJKLMNOP_-", min_size=8, max_size=40)


@st.composite
def service_facts(draw: st.DrawFn, service_type: ServiceType, project: str, name: str) -> ServiceFacts:
    purposes = {
        ServiceType.KAFKA: (("kafka", True), ("schema_registry", False)),
        ServiceType.OPENSEARCH: (("opensearch", True), ("opensearch_dashboards", False)),
        ServiceType.VALKEY: (("valkey", True), ("valkey_replica", False)),
    }[service_type]
    chosen = tuple(
        (purpose, draw(endpoints)) for purpose, required in purposes if required or draw(st.booleans())
    )
    return ServiceFacts(project, name, service_type, "RUNNING", chosen)


@st.composite
def section_inputs(draw: st.DrawFn, app: AivenApplication) -> tuple[SectionInput, ...]:
    """Aiven facts and users for every section of `app`, as the shell would gather them."""
    inputs = []
    for handler, section in all_sections(app):
        target = handler.target(app, section, CONFIG)
        candidate = draw(st.sampled_from(target.candidates))
        facts = draw(service_facts(section.service_type, target.project, candidate.service))
        ca, cert, key = tls_material(draw(st.integers(0, 1)))
        is_kafka = section.service_type is ServiceType.KAFKA
        user = ServiceUser(
            username=handler.username(app, section).name,
            password=draw(passwords),
            access_cert=cert if is_kafka else None,
            access_key=key if is_kafka else None,
        )
        inputs.append(SectionInput(section, facts, user, ca))
    return tuple(inputs)


foreign_keys = st.from_regex(r"\A(example\.com/)?[a-z][a-z0-9-]{0,15}\Z").filter(
    lambda k: k not in {"app", "team", "type"}
)


# --- managed Secrets and their watch events (ownership index) ------------------------------------

SECRET_NAMESPACES = ("team-a", "team-b")
SECRET_NAMES = ("good-kafka", "db-creds", "search", "cache")
SECRET_APPS = ("good", "collide", "")
KAFKA_USERS = ("a_good_00000000_AAA", "a_good_00000000_BBB", "b_collide_11111111_CCC")


@st.composite
def raw_secrets(draw: st.DrawFn) -> dict[str, Any]:
    """A Secret in API shape from a small universe (so keys and users collide often): managed
    or not, any of a few apps, recording zero to two Kafka users, sometimes being deleted."""
    from aivenator.domain import labels as L

    namespace = draw(st.sampled_from(SECRET_NAMESPACES))
    name = draw(st.sampled_from(SECRET_NAMES))
    managed = draw(st.booleans())
    app = draw(st.sampled_from(SECRET_APPS))
    labels: dict[str, str] = {}
    if app:
        labels[L.APP_LABEL] = app
    if managed:
        labels[L.TYPE_LABEL] = L.TYPE_VALUE
    if draw(st.booleans()):
        labels[L.TEAM_LABEL] = draw(st.sampled_from(SECRET_NAMESPACES))
    annotations: dict[str, str] = {}
    if draw(st.booleans()):
        annotations[L.KAFKA_SERVICE_USER] = draw(st.sampled_from(KAFKA_USERS))
        annotations[L.KAFKA_POOL] = draw(st.sampled_from(sorted(ALLOWED_PROJECTS)))
        if draw(st.booleans()):  # Go-written Secrets lack the service name
            annotations[L.KAFKA_SERVICE_NAME] = "kafka"
    meta: dict[str, Any] = {
        "namespace": namespace,
        "name": name,
        "labels": labels,
        "annotations": annotations,
        "finalizers": [L.FINALIZER] if draw(st.booleans()) else [],
    }
    if draw(st.integers(0, 4)) == 0:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "data": {}}


#: ("put", secret) for an add or update, ("delete", (namespace, name)) for a deletion.
secret_events = st.one_of(
    st.tuples(st.just("put"), raw_secrets()),
    st.tuples(
        st.just("delete"), st.tuples(st.sampled_from(SECRET_NAMESPACES), st.sampled_from(SECRET_NAMES))
    ),
)
