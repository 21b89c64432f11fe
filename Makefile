# lensbridge — `make help` lists the targets.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.install-stamp
JUNIT := .cache/pytest-junit.xml

# The local broker (scripts/kafka.sh); override e.g. `make test KAFKA_PORT=19092`.
# KAFKA_DATA_DIR empty = the script's default (.kafka/data for port 9092).
KAFKA_PORT ?= 9092
KAFKA_CONTROLLER_PORT ?= 9093
KAFKA_DATA_DIR ?=
# make test points the integration tests at this broker (an already-set value wins).
KAFKA_BOOTSTRAP_SERVERS ?= 127.0.0.1:$(KAFKA_PORT)
export KAFKA_PORT KAFKA_CONTROLLER_PORT KAFKA_DATA_DIR KAFKA_BOOTSTRAP_SERVERS

.PHONY: help install kafka kafka-stop kafka-sasl kafka-sasl-stop lint test test-unit run bench

help: ## list the targets
	@awk -F':.*## ' '/^[a-z-]+:.*## / { printf "  %-11s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

install: $(STAMP) ## create .venv (python3.11) and install the project with test dependencies

$(STAMP): pyproject.toml
	@test -x $(PY) || { echo "install: creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); }
	@echo "install: pip install -e '.[test]'"
	@$(PY) -m pip install -q --disable-pip-version-check -e '.[test]'
	@touch $@

kafka: ## start the local Apache Kafka 4 broker (Maven jars, KRaft) on 127.0.0.1:$KAFKA_PORT; reuses a running one
	@scripts/kafka.sh start

kafka-stop: ## stop the local broker started by `make kafka`
	@scripts/kafka.sh stop

kafka-sasl: ## start the second local broker, SASL_SSL (SCRAM-SHA-512, test CA) on 127.0.0.1:19094, for the secured-cluster tests
	@scripts/kafka-sasl.sh start

kafka-sasl-stop: ## stop the SASL_SSL broker started by `make kafka-sasl`
	@scripts/kafka-sasl.sh stop

# ruff and mypy read their settings (rules, the files mypy checks) from pyproject.toml.
lint: install ## ruff check (pyflakes, isort, bugbear, private members outside app/faust) and mypy (core, settings, lenses, observe, agents)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

test-unit: install ## unit tests only (no broker)
	@scripts/install-tools.sh
	$(PY) -m pytest tests/unit tests/deploy tests/bench -q -rs

# Fails when the integration tests did not run: none collected, or any skipped.
# kafka-sasl: tests/integration/test_sasl_ssl.py runs against it (its fixture would start it too).
test: install lint kafka kafka-sasl ## lint, then unit + integration tests against the real brokers; fails if integration tests were skipped
	@scripts/install-tools.sh
	@mkdir -p $(dir $(JUNIT))
	$(PY) -m pytest tests/unit tests/deploy tests/bench tests/integration -q -rs --junitxml=$(JUNIT)
	@$(PY) -c 'import sys, xml.etree.ElementTree as ET; \
	cases = [c for c in ET.parse(sys.argv[1]).iter("testcase") if c.get("classname", "").startswith("tests.integration")]; \
	skipped = [c.get("classname") + "::" + c.get("name") for c in cases if c.find("skipped") is not None]; \
	print(f"test: {len(cases)} integration tests, {len(skipped)} skipped"); \
	sys.exit("test: FAILED: no integration test ran" if not cases else \
	         "test: FAILED: integration tests were skipped: " + ", ".join(skipped) if skipped else 0)' $(JUNIT)

run: install ## start the broker and the worker, replay a sample (scripts/run.sh)
	@scripts/run.sh

bench: install kafka ## throughput, latency and memory against baselines (docs/BENCH.md); not part of make test
	@$(PY) -m pip install -q --disable-pip-version-check -e '.[test,bench]'
	$(VENV)/bin/lensbridge bench $(BENCH_ARGS)
