"""Benchmarks at clinic-network scale (BENCHMARKS.md): ``make bench``; never part of ``make test``."""
