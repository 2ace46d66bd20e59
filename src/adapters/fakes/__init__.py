"""Test doubles shipped with the product: an in-memory Kubernetes and the Aiven simulator.

Used by the demo, the test harness and tooling; the production runtime never imports them
(an import-linter contract keeps it so).
"""
