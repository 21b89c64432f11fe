"""The pure core: ingest, windows, lenses, detection and SLOs as plain objects and functions.

Nothing here imports Faust, Kafka, Prometheus or the rest of the app, reads the clock or
the environment (tests/unit/test_structure.py checks the imports): time and settings come in
as parameters, failures go out as values.
"""
