"""Benchmarks: figures to read, not tests (``python -m tools.bench NAME``).

They build their worlds from tests/harness, the functional tests' own.
"""
