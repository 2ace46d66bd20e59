"""Which Secrets a workload refers to."""

from __future__ import annotations

from typing import Any

from aivenator.domain.references import (
    WORKLOAD_KINDS,
    WorkloadRefs,
    pod_spec_of,
    secret_names_in_pod_spec,
    workload_refs,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.workload_strategies import GeneratedWorkload, pod_specs, workloads, wrap_pod_spec

FULL_POD_SPEC: dict[str, Any] = {
    "volumes": [
        {"name": "a", "secret": {"secretName": "from-volume"}},
        {
            "name": "b",
            "projected": {"sources": [{"secret": {"name": "from-projected"}}, {"configMap": {"name": "cm"}}]},
        },
        {"name": "c", "configMap": {"name": "not-a-secret"}},
    ],
    "containers": [
        {
            "name": "main",
            "env": [
                {"name": "X", "valueFrom": {"secretKeyRef": {"name": "from-env", "key": "k"}}},
                {"name": "Y", "valueFrom": {"configMapKeyRef": {"name": "cm-env", "key": "k"}}},
                {"name": "Z", "value": "literal"},
            ],
            "envFrom": [{"secretRef": {"name": "from-env-from"}}, {"configMapRef": {"name": "cm-env-from"}}],
        }
    ],
    "initContainers": [{"name": "init", "envFrom": [{"secretRef": {"name": "from-init"}}]}],
    "ephemeralContainers": [
        {"name": "debug", "env": [{"name": "D", "valueFrom": {"secretKeyRef": {"name": "from-ephemeral"}}}]}
    ],
}


def test_every_reference_kind_in_every_container_list_is_found() -> None:
    assert secret_names_in_pod_spec(FULL_POD_SPEC) == {
        "from-volume",
        "from-projected",
        "from-env",
        "from-env-from",
        "from-init",
        "from-ephemeral",
    }


def test_config_maps_and_literals_are_not_secret_references() -> None:
    names = secret_names_in_pod_spec(FULL_POD_SPEC)
    assert not names & {"cm", "not-a-secret", "cm-env", "cm-env-from", "literal"}


def test_missing_and_null_fields_are_tolerated() -> None:
    odd: dict[str, Any] = {
        "volumes": None,
        "containers": [
            None,
            {"name": "x", "env": None, "envFrom": None},
            {
                "name": "y",
                "env": [None, {"name": "A"}, {"valueFrom": None}, {"valueFrom": {"secretKeyRef": None}}],
            },
            {"name": "z", "envFrom": [{"secretRef": None}, {"secretRef": {"name": None}}, {"secretRef": {}}]},
        ],
        "initContainers": "not a list",
        "ephemeralContainers": {"not": "a list"},
    }
    assert secret_names_in_pod_spec(odd) == frozenset()
    assert secret_names_in_pod_spec({}) == frozenset()
    assert secret_names_in_pod_spec(None) == frozenset()
    assert (
        secret_names_in_pod_spec(
            {"volumes": [{"projected": {"sources": None}}, {"secret": {"secretName": ""}}]}
        )
        == frozenset()
    )


def test_pod_spec_is_found_where_each_kind_keeps_it() -> None:
    for kind in WORKLOAD_KINDS:
        obj = wrap_pod_spec(kind, "ns", "w", FULL_POD_SPEC)
        assert pod_spec_of(kind, obj) == FULL_POD_SPEC, kind


def test_cron_job_pod_spec_sits_under_the_job_template() -> None:
    obj = wrap_pod_spec(
        "CronJob", "ns", "nightly", {"containers": [{"envFrom": [{"secretRef": {"name": "s"}}]}]}
    )
    assert (
        obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["envFrom"][0]["secretRef"][
            "name"
        ]
        == "s"
    )
    assert workload_refs("CronJob", obj).secret_names == {"s"}


def test_unknown_kinds_and_broken_objects_refer_to_nothing() -> None:
    assert pod_spec_of("ConfigMap", {"spec": FULL_POD_SPEC}) is None
    assert pod_spec_of("Deployment", {"spec": None}) is None
    assert pod_spec_of("Deployment", {"spec": {"template": None}}) is None
    assert pod_spec_of("CronJob", {"spec": {"jobTemplate": {"spec": None}}}) is None
    refs = workload_refs("Deployment", {"metadata": None})
    assert refs == WorkloadRefs(namespace="", kind="Deployment", name="", secret_names=frozenset())


def test_workload_refs_carries_namespace_kind_and_name() -> None:
    obj = wrap_pod_spec("StatefulSet", "team-a", "db", FULL_POD_SPEC)
    refs = workload_refs("StatefulSet", obj)
    assert (refs.namespace, refs.kind, refs.name) == ("team-a", "StatefulSet", "db")
    assert "from-projected" in refs.secret_names


@settings(max_examples=60)
@given(pod_specs())
def test_exactly_the_constructed_references_are_found(case: tuple[dict[str, Any], frozenset[str]]) -> None:
    spec, expected = case
    assert secret_names_in_pod_spec(spec) == expected


@settings(max_examples=60)
@given(workloads())
def test_every_workload_kind_reports_its_pod_spec_references(workload: GeneratedWorkload) -> None:
    refs = workload_refs(workload.kind, workload.obj)
    assert refs == WorkloadRefs(workload.namespace, workload.kind, workload.name, workload.expected)


@settings(max_examples=50)
@given(pod_specs(), st.sampled_from(WORKLOAD_KINDS))
def test_the_pod_spec_is_not_mutated(case: tuple[dict[str, Any], frozenset[str]], kind: str) -> None:
    spec, _ = case
    obj = wrap_pod_spec(kind, "ns", "w", spec)
    before = repr(obj)
    workload_refs(kind, obj)
    assert repr(obj) == before
