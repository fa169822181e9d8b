"""Benchmarks for `make bench`: each figure is a ratio of two things measured in the same run.

Run with `python -m bench` (all) or `python -m bench --only queue,photos` (some). Each benchmark
returns Figure rows; the table is printed and written into docs/performance.md. A benchmark whose
dependency is missing (wrk, an unfinished part of the app) says "not run: <reason>" instead of failing.
Nothing here is a test: timings never decide whether the test suite passes.
"""
