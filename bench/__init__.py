"""Benchmarks: `python -m bench.assign` checks the assignment optimizer against published GAP optima."""
