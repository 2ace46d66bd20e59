"""Imperative shells: gather inputs, call the domain, execute the returned actions.

Reconcile, finalize, janitor and orphan sweep live here; they never import the CLI or the runtime.
"""
