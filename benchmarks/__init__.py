"""Benchmarks: each writes a markdown table (and a PNG where useful) under benchmarks/results/."""
