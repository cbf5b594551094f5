"""Benchmarks (run them as scripts: ``python -m bench.<name>``)."""
