# syntax=docker/dockerfile:1
# lensbridge worker image: `docker build -t lensbridge .` then
#   docker run --rm -e KAFKA_BOOTSTRAP_SERVERS=kafka:9092 -p 9108:9108 lensbridge          (worker)
#   docker run --rm -e KAFKA_BOOTSTRAP_SERVERS=kafka:9092 lensbridge simulate            (demo traffic)
# Settings come from the environment (app/settings.py, docs/DEPLOY.md).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# -- build: a virtualenv with the project and its runtime dependencies only (no [test] extra).
# A compiler is here because faust-streaming publishes no aarch64 wheel: on arm64 hosts pip
# builds it from source. It stays in this stage; the runtime image has no compiler.
FROM ${PYTHON_IMAGE} AS build
# build-essential is a metapackage whose versions differ per Debian release: not pinned.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/lensbridge
WORKDIR /src
COPY pyproject.toml README.md ./
COPY app ./app
COPY agents ./agents
RUN /opt/lensbridge/bin/pip install . \
    && /opt/lensbridge/bin/lensbridge --help >/dev/null

# -- runtime
FROM ${PYTHON_IMAGE}
ARG UID=10001
RUN groupadd --system --gid ${UID} lensbridge \
    && useradd --system --uid ${UID} --gid lensbridge --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin lensbridge \
    && mkdir -p /var/lib/lensbridge \
    && chown lensbridge:lensbridge /var/lib/lensbridge
COPY --from=build /opt/lensbridge /opt/lensbridge
WORKDIR /app
# `lensbridge simulate` reads scenarios/demo.json relative to the working directory.
COPY scenarios ./scenarios
ENV PATH=/opt/lensbridge/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LENSBRIDGE_DATA_DIR=/var/lib/lensbridge \
    LENSBRIDGE_METRICS_PORT=9108
VOLUME ["/var/lib/lensbridge"]
# Numeric, so Kubernetes runAsNonRoot can verify it without a passwd lookup.
USER ${UID}:${UID}
# 9108: Prometheus /metrics, /healthz, /readyz (up during table recovery). Faust's web server is
# off (LENSBRIDGE_WEB_ENABLED=false); when turned on it listens on LENSBRIDGE_WEB_BIND (loopback).
EXPOSE 9108
# Healthy = /healthz says 200: the worker answers and is not stalled (input waiting with nothing
# durable for LENSBRIDGE_STALL_SECONDS, e.g. Kafka away). Readiness (/readyz: tables recovered)
# is a separate question: see the Kubernetes readiness probe in deploy/k8s/deployment.yaml.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('LENSBRIDGE_METRICS_PORT', '9108'), timeout=4).read()"]
ENTRYPOINT ["lensbridge"]
CMD ["worker"]
