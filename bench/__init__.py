"""Benchmarks against peer tools. Not part of the test suite."""
