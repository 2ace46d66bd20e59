"""aivenator: a Kubernetes operator that gives workloads Aiven credentials through Secrets.

`aivenator.domain` is the pure core (usable as a library), `aivenator.adapters` the Kubernetes
and Aiven edges plus the shipped test doubles (`aivenator.adapters.fakes`), and
`aivenator.entrypoints` the CLI, the operator runtime and the shells that execute domain decisions.
"""
