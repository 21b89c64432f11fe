#!/usr/bin/env bash
# A second local broker with a SASL_SSL listener (SCRAM-SHA-512 over TLS), for the secured
# cluster tests; it runs beside the plaintext one from the same jars and never touches it.
#
#   scripts/kafka-sasl.sh start|stop|status|wait   as scripts/kafka.sh, for this broker
#
# Listeners, all on 127.0.0.1: SASL_SSL on $KAFKA_SASL_SSL_PORT (19094) for clients, SSL with
# a required client certificate (mTLS) on $KAFKA_MTLS_PORT (19097), the controller on
# $KAFKA_SASL_CONTROLLER_PORT (19095) and the inter-broker PLAINTEXT listener on
# $KAFKA_SASL_INTERNAL_PORT (19096, also what the readiness probe asks). On start it makes,
# once, a CA, a broker certificate valid for IP:127.0.0.1 and DNS:localhost and a client
# certificate (openssl, into <run dir>/tls, run dir .kafka/run-19096), formats the data dir
# with SCRAM-SHA-512 users made by Kafka's own StorageTool (--add-scram), and writes
# <run dir>/client.env (SASL_SSL) and <run dir>/mtls.env: the settings a client needs.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export KAFKA_SASL_SSL_PORT="${KAFKA_SASL_SSL_PORT:-19094}"
export KAFKA_CONTROLLER_PORT="${KAFKA_SASL_CONTROLLER_PORT:-19095}"
export KAFKA_PORT="${KAFKA_SASL_INTERNAL_PORT:-19096}"
export KAFKA_DATA_DIR="${KAFKA_SASL_DATA_DIR:-}"   # empty: .kafka/data-<internal port>
export KAFKA_HEAP="${KAFKA_SASL_HEAP:-256m}"
exec "$ROOT/scripts/kafka.sh" "$@"
