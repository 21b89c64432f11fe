"""`lensbridge bench`: throughput, alert latency and memory against baselines (issue 6).

A benchmark, not a test: it is never collected by pytest. Modules:

- `cli.py`: arguments and the run order; `rows.py`: one run of one row;
- `data.py`: simulator data written to fresh topics (one event per message, JSON arrays, NDJSON);
- `procs.py`: worker and baseline subprocesses, CPU and peak RSS of a process;
- `baselines/`: the comparison programs (textbook Faust, Faust ceiling, aiokafka ceiling, Quix);
- `latency.py`, `memory.py`, `profile.py`: the other measurements;
- `stats.py`, `report.py`: pure: medians, ratios, targets, the table and the JSON.
"""
