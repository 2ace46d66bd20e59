"""Benchmarks: `make bench` (bench.py), `make bench-scale` (scale.py), adaptive.py, aiven_requests.py."""
