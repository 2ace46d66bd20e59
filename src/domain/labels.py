"""Every label, annotation and finalizer key the operator reads or writes (product spec §4).

These strings are part of the compatible contract with the Go operator and with the tooling
around it (janitor selectors, the Kafka topic operator, dashboards): change none of them.
"""

from __future__ import annotations

from enum import StrEnum

FINALIZER = "aivenator.aiven.nais.io/finalizer"

# --- labels on managed Secrets -------------------------------------------------------------
APP_LABEL = "app"
TEAM_LABEL = "team"
TYPE_LABEL = "type"
#: Value of the `type` label that marks a Secret as managed by aivenator (janitor selector).
TYPE_VALUE = "aivenator.aiven.nais.io"
#: Copied from the AivenApplication's label of the same key ("0" when absent).
SECRET_GENERATION_LABEL = "aiven.nais.io/secret-generation"
SECRET_GENERATION_DEFAULT = "0"

# --- label and annotation (the same key is written as both) --------------------------------
PROTECTED = "aivenator.aiven.nais.io/protected"

# --- annotations on managed Secrets ---------------------------------------------------------
WITH_TIME_LIMIT = "aivenator.aiven.nais.io/with-time-limit"
EXPIRES_AT = "aivenator.aiven.nais.io/expires-at"
CORRELATION_ID = "nais.io/deploymentCorrelationID"

KAFKA_SERVICE_USER = "kafka.aiven.nais.io/serviceUser"
KAFKA_POOL = "kafka.aiven.nais.io/pool"
#: NEW: the Kafka service the user lives in (`kafka` or `<pool>-kafka`), so cleanup does not
#: have to guess. Secrets written by the Go operator lack it; cleanup then tries both names.
KAFKA_SERVICE_NAME = "kafka.aiven.nais.io/serviceName"

OPENSEARCH_SERVICE_USER = "opensearch.aiven.nais.io/serviceUser"
OPENSEARCH_SERVICE_NAME = "opensearch.aiven.nais.io/serviceName"
OPENSEARCH_PROJECT = "opensearch.aiven.nais.io/project"

VALKEY_PROJECT = "valkey.aiven.nais.io/project"
#: Per-instance Valkey annotations are `<inst>` + one of these (see `valkey_annotation_prefix`).
VALKEY_SERVICE_USER_SUFFIX = ".valkey.aiven.nais.io/serviceUser"
VALKEY_SERVICE_NAME_SUFFIX = ".valkey.aiven.nais.io/serviceName"

# --- keys read from the AivenApplication ------------------------------------------------------
APP_CORRELATION_ID = CORRELATION_ID

# --- the aiven.io objects (owned by Aiven's own operator) that gate OpenSearch and Valkey ----
AIVEN_IO_API_VERSION = "aiven.io/v1alpha1"


class AivenObjectKind(StrEnum):
    """Kinds of Aiven's own operator's objects (`aiven.io/v1alpha1`) the operator reads."""

    OPENSEARCH = "OpenSearch"
    VALKEY = "Valkey"


OPENSEARCH_KIND = AivenObjectKind.OPENSEARCH
VALKEY_KIND = AivenObjectKind.VALKEY


def valkey_annotation_prefix(instance: str) -> str:
    """`<inst>`: the instance name with every character outside `[a-z0-9]` replaced by `-`."""
    return "".join(c if ("a" <= c <= "z" or "0" <= c <= "9") else "-" for c in instance)


def valkey_service_user_annotation(instance: str) -> str:
    return valkey_annotation_prefix(instance) + VALKEY_SERVICE_USER_SUFFIX


def valkey_service_name_annotation(instance: str) -> str:
    return valkey_annotation_prefix(instance) + VALKEY_SERVICE_NAME_SUFFIX
