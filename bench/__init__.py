"""Benchmarks of the registry: `make bench` runs `python -m bench.registry_bench`."""
