"""Benchmarks of the score follower against peers (see docs/benchmarks.md).

Run everything with ``python -m benchmarks.run_all`` from the repository root.
"""
