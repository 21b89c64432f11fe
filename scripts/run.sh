#!/usr/bin/env bash
# `make run`: a local broker (unless KAFKA_BOOTSTRAP_SERVERS points elsewhere), the worker, the live
# demo scenario, and the correlation alerts as they fire. Ctrl-C stops everything started here.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV_BIN=.venv/bin
RUN_DIR=.cache/run
mkdir -p "$RUN_DIR"

say() { printf '\033[1mrun:\033[0m %s\n' "$*"; }

if [[ -z "${LENSBRIDGE_EXTERNAL_KAFKA:-}" ]]; then
  say "starting the local Apache Kafka broker (scripts/kafka.sh start)"
  scripts/kafka.sh start
fi
export KAFKA_BOOTSTRAP_SERVERS="${KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:${KAFKA_PORT:-9092}}"
# The demo scenario uses 10-second windows so incidents show within minutes.
# A fresh app id and topics per run: the demo starts from a clean state every time.
RUN_ID="$(date +%s)"
export LENSBRIDGE_APP_ID="${LENSBRIDGE_APP_ID:-lensbridge-demo-$RUN_ID}"
for t in REQUESTS:requests RUM:rum-events SUMMARIES:lens-summaries ALERTS:correlation-alerts DLQ:lensbridge-dlq WINDOWS:lens-windows; do
  var="LENSBRIDGE_TOPIC_${t%%:*}"
  export "$var=${!var:-demo-$RUN_ID-${t#*:}}"
done
export LENSBRIDGE_WINDOW_SECONDS="${LENSBRIDGE_WINDOW_SECONDS:-10}"
export LENSBRIDGE_GRACE_SECONDS="${LENSBRIDGE_GRACE_SECONDS:-2}"
export LENSBRIDGE_IDLE_SECONDS="${LENSBRIDGE_IDLE_SECONDS:-5}"
export LENSBRIDGE_AVAILABILITY_SLICE_SECONDS="${LENSBRIDGE_AVAILABILITY_SLICE_SECONDS:-5}"
export LENSBRIDGE_METRICS_PORT="${LENSBRIDGE_METRICS_PORT:-9108}"
export LENSBRIDGE_DATA_DIR="${LENSBRIDGE_DATA_DIR:-$RUN_DIR/data}"
SCENARIO="${SCENARIO:-scenarios/demo.json}"

pids=()
stopped=""
cleanup() {
  [[ -n "$stopped" ]] && return
  stopped=1
  say "stopping (worker, simulator, alert reader); the broker keeps running (make kafka-stop)"
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

say "starting the worker (log: $RUN_DIR/worker.log); metrics at http://127.0.0.1:$LENSBRIDGE_METRICS_PORT/metrics"
"$VENV_BIN/lensbridge" worker >"$RUN_DIR/worker.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 120); do
  if "$VENV_BIN/python" -c "import sys,urllib.request; body=urllib.request.urlopen('http://127.0.0.1:$LENSBRIDGE_METRICS_PORT/metrics',timeout=1).read().decode(); sys.exit(0 if 'lensbridge_ready 1.0' in body else 1)" 2>/dev/null; then
    break
  fi
  if ! kill -0 "${pids[0]}" 2>/dev/null; then
    say "the worker exited; last lines of $RUN_DIR/worker.log:"; tail -20 "$RUN_DIR/worker.log"; exit 1
  fi
  sleep 1
done
say "worker ready; publishing $SCENARIO live (log: $RUN_DIR/simulate.log)"
"$VENV_BIN/lensbridge" simulate --scenario "$SCENARIO" >"$RUN_DIR/simulate.log" 2>&1 &
pids+=($!)
say "alerts appear below as incidents are decided (warm-up: about $(( LENSBRIDGE_WINDOW_SECONDS * 12 )) s). Ctrl-C stops."
"$VENV_BIN/lensbridge" alerts --follow &
pids+=($!)
wait "${pids[1]}" || true
say "scenario finished; alerts keep printing until Ctrl-C"
wait "${pids[2]}" || true
