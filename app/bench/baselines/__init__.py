"""Comparison programs, each run as its own process by `app.bench.rows`.

Each consumes a bench topic from the beginning with a fresh consumer group, times itself
from its first event to its `--events`-th, and prints one `BENCH_RESULT {json}` line.
"""
