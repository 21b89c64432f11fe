#!/usr/bin/env bash
# A real single-node Apache Kafka 4 broker (KRaft, combined broker+controller) run from
# Maven Central jars; no Docker needed.
#
#   scripts/kafka.sh start   resolve jars once, format the data dir once, start, wait until ready
#                            (reuses a broker that already answers on the port)
#   scripts/kafka.sh stop    stop the broker started by this script (pid file)
#   scripts/kafka.sh status  say whether a broker answers; exit 0 if it does
#   scripts/kafka.sh wait    wait until a broker answers a real Kafka request
#
# Environment: KAFKA_PORT (9092), KAFKA_CONTROLLER_PORT (9093), KAFKA_DATA_DIR
# (.kafka/data for port 9092, else .kafka/data-<port>), KAFKA_CACHE_DIR (.kafka),
# KAFKA_WAIT_S (60), KAFKA_HEAP (512m), KAFKA_SASL_SSL_PORT (unset; scripts/kafka-sasl.sh sets it).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KAFKA_HOST=127.0.0.1
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
CACHE="${KAFKA_CACHE_DIR:-$ROOT/.kafka}"
LIBS="$CACHE/libs"
POM="$ROOT/deploy/kafka/pom.xml"
LOG4J="$ROOT/deploy/kafka/log4j2.yaml"
WAIT_S="${KAFKA_WAIT_S:-60}"
HEAP="${KAFKA_HEAP:-512m}"
# Run files (properties, pid, logs) live in .kafka/ for the default port and in
# .kafka/run-<port>/ otherwise, so two brokers on different ports never share them.
if [[ "$KAFKA_PORT" == 9092 ]]; then
  RUN_DIR="$CACHE"; DEFAULT_DATA="$CACHE/data"
else
  RUN_DIR="$CACHE/run-$KAFKA_PORT"; DEFAULT_DATA="$CACHE/data-$KAFKA_PORT"
fi
DATA_DIR="${KAFKA_DATA_DIR:-$DEFAULT_DATA}"
[[ "$DATA_DIR" = /* ]] || DATA_DIR="$ROOT/$DATA_DIR"
PROPS="$RUN_DIR/server.properties"
PID_FILE="$RUN_DIR/kafka.pid"
LOG_FILE="$RUN_DIR/kafka.log"   # written by log4j2 (deploy/kafka/log4j2.yaml)
OUT_FILE="$RUN_DIR/kafka.out"   # JVM stdout/stderr (crashes before log4j is up)
FORMAT_STAMP="$DATA_DIR/.lensbridge-format"
# KAFKA_SASL_SSL_PORT set (scripts/kafka-sasl.sh): add a SASL_SSL client listener on it.
SASL_SSL_PORT="${KAFKA_SASL_SSL_PORT:-}"

say() { echo "kafka: $*"; }
die() { echo "kafka: ERROR: $*" >&2; exit 1; }
# shellcheck source=scripts/kafka-tls.sh
[[ -z "$SASL_SSL_PORT" ]] || source "$ROOT/scripts/kafka-tls.sh"

PY="$(command -v python3 || true)"
[[ -n "$PY" ]] || PY="$ROOT/.venv/bin/python"

# Sends real Kafka requests with the standard library only (works before `make install`):
# ApiVersions, then Metadata, which lists only registered, unfenced brokers.
# Exit 0 = ready, 2 = nothing listens, 3 = something listens but no usable Kafka answer.
probe() {
  "$PY" - "$KAFKA_HOST" "$KAFKA_PORT" <<'PYEOF'
import socket, struct, sys

host, port = sys.argv[1], int(sys.argv[2])

def call(sock, api_key, version, body, corr):
    client = b"lensbridge-probe"
    header = struct.pack(">hhih", api_key, version, corr, len(client)) + client
    msg = header + body
    sock.sendall(struct.pack(">i", len(msg)) + msg)
    size = struct.unpack(">i", recv(sock, 4))[0]
    data = recv(sock, size)
    if struct.unpack(">i", data[:4])[0] != corr:
        raise ValueError("correlation id mismatch")
    return data[4:]

def recv(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed by peer")
        buf += chunk
    return buf

try:
    sock = socket.create_connection((host, port), timeout=3)
except OSError as exc:
    print(f"nothing answers on {host}:{port} ({exc.strerror or exc})")
    sys.exit(2)
try:
    with sock:
        body = call(sock, 18, 0, b"", 1)  # ApiVersions v0
        err, n = struct.unpack(">hi", body[:6])
        if err:
            raise ValueError(f"ApiVersions error code {err}")
        apis = {}
        for i in range(n):
            k, lo, hi = struct.unpack(">hhh", body[6 + 6 * i: 12 + 6 * i])
            apis[k] = (lo, hi)
        lo, hi = apis.get(3, (99, -1))
        if not lo <= 8 <= hi:
            raise ValueError(f"Metadata v8 unsupported (broker offers v{lo}-v{hi})")
        # Metadata v8: all topics, auto-create flag, no authorized-operations.
        body = call(sock, 3, 8, struct.pack(">ibbb", -1, 1, 0, 0), 2)
        pos = 4  # throttle_time_ms
        (nbrokers,) = struct.unpack(">i", body[pos:pos + 4]); pos += 4
        for _ in range(nbrokers):
            pos += 4
            (hlen,) = struct.unpack(">h", body[pos:pos + 2]); pos += 2 + hlen + 4
            (rlen,) = struct.unpack(">h", body[pos:pos + 2]); pos += 2 + max(rlen, 0)
        (clen,) = struct.unpack(">h", body[pos:pos + 2]); pos += 2
        cluster = body[pos:pos + clen].decode() if clen >= 0 else None; pos += max(clen, 0)
        (controller,) = struct.unpack(">i", body[pos:pos + 4])
        if nbrokers < 1:
            raise ValueError("no broker registered yet")
        # Kafka 4.0 removed Fetch v0-v3 (KIP-896): min version 4 means a 4.x broker.
        flo, fhi = apis.get(1, (-1, -1))
        gen = "Kafka 4.x" if flo >= 4 else "pre-4.0 Kafka"
        print(f"Kafka broker answers on {host}:{port}: cluster {cluster}, {nbrokers} broker(s), "
              f"controller {controller}, Fetch v{flo}-v{fhi} ({gen} protocol)")
except (OSError, ValueError, struct.error) as exc:
    print(f"{host}:{port} accepts connections but gives no usable Kafka answer: {exc}")
    sys.exit(3)
PYEOF
}

pid_alive() {  # our pid file names a live kafka.Kafka JVM (guards against pid reuse)
  [[ -f "$PID_FILE" ]] || return 1
  local pid; pid="$(cat "$PID_FILE")"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null \
    && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'kafka\.Kafka'
}

resolve_jars() {
  local want; want="$(sha256sum "$POM" | cut -c1-16)"
  if [[ -f "$LIBS/.resolved" && "$(cat "$LIBS/.resolved")" == "$want" ]]; then
    say "jars cached in ${LIBS#$ROOT/} ($(ls "$LIBS"/*.jar | wc -l) jars)"; return
  fi
  command -v mvn >/dev/null || die "mvn not found: install Maven (Debian: apt-get install maven) to resolve Kafka jars"
  command -v java >/dev/null || die "java not found: install a JDK >= 17 (Debian: apt-get install openjdk-17-jre-headless)"
  say "resolving org.apache.kafka:kafka_2.13 + log4j2 from Maven Central into ${LIBS#$ROOT/}"
  rm -rf "$LIBS"; mkdir -p "$CACHE"
  if ! mvn -q -B -f "$POM" dependency:copy-dependencies -DoutputDirectory="$LIBS" \
        -DincludeScope=runtime >"$CACHE/mvn.log" 2>&1; then
    tail -n 30 "$CACHE/mvn.log" >&2
    die "mvn could not resolve the Kafka jars (full output: ${CACHE#$ROOT/}/mvn.log)"
  fi
  ls "$LIBS"/kafka_2.13-*.jar >/dev/null 2>&1 || die "mvn finished but no kafka_2.13 jar in $LIBS"
  echo "$want" >"$LIBS/.resolved"
  say "resolved $(ls "$LIBS"/*.jar | wc -l) jars ($(basename "$LIBS"/kafka_2.13-*.jar))"
}

write_properties() {
  mkdir -p "$RUN_DIR"
  local listeners="PLAINTEXT://$KAFKA_HOST:$KAFKA_PORT" protocols="CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
  [[ -z "$SASL_SSL_PORT" ]] || { listeners+="$(tls_listeners)"; protocols+="$(tls_protocols)"; }
  cat >"$PROPS" <<EOF
# Generated by scripts/kafka.sh: single-node KRaft, broker and controller in one process.
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=$KAFKA_HOST:$KAFKA_CONTROLLER_PORT
listeners=$listeners,CONTROLLER://$KAFKA_HOST:$KAFKA_CONTROLLER_PORT
advertised.listeners=$listeners,CONTROLLER://$KAFKA_HOST:$KAFKA_CONTROLLER_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=$protocols
log.dirs=$DATA_DIR
num.partitions=4
auto.create.topics.enable=true
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
log.retention.hours=24
EOF
  [[ -z "$SASL_SSL_PORT" ]] || tls_properties >>"$PROPS"
}

# What the data dir was formatted for; any difference (controller endpoint baked into the
# bootstrap checkpoint by --standalone, Kafka version, node id) means stale state: reformat.
format_fingerprint() {
  echo "node.id=1 controller=$KAFKA_HOST:$KAFKA_CONTROLLER_PORT $(basename "$LIBS"/kafka_2.13-*.jar)${SASL_SSL_PORT:+ scram=$(tls_fingerprint)}"
}

java_cmd() {  # java with the broker classpath and our log4j2 config, then the main class + args
  JAVA_CMD=(java -Xms128m -Xmx"$HEAP" -XX:+UseG1GC -Djava.awt.headless=true
    -Dlog4j2.configurationFile="$LOG4J" -Dkafka.logs.dir="$RUN_DIR"
    -cp "$LIBS/*" "$@")
}

format_storage() {
  local reason="$1"
  say "formatting ${DATA_DIR#$ROOT/} ($reason)"
  rm -rf "$DATA_DIR"; mkdir -p "$DATA_DIR"
  local cid
  cid="$("$PY" -c 'import base64,uuid
while True:
    s = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    if not s.startswith("-"): print(s); break')"
  FORMAT_ARGS=()
  [[ -z "$SASL_SSL_PORT" ]] || tls_format_args
  java_cmd kafka.tools.StorageTool format --standalone -t "$cid" -c "$PROPS" "${FORMAT_ARGS[@]}"
  if ! "${JAVA_CMD[@]}" >"$RUN_DIR/format.log" 2>&1; then
    cat "$RUN_DIR/format.log" >&2
    die "kafka.tools.StorageTool format failed (see above)"
  fi
  format_fingerprint >"$FORMAT_STAMP"
  say "formatted cluster $cid"
}

ensure_formatted() {
  if [[ ! -f "$DATA_DIR/meta.properties" ]]; then
    format_storage "no meta.properties yet"
  elif [[ ! -f "$FORMAT_STAMP" || "$(cat "$FORMAT_STAMP")" != "$(format_fingerprint)" ]]; then
    format_storage "stale data dir: formatted for another config or Kafka version"
  elif ! grep -q '^node.id=1$' "$DATA_DIR/meta.properties"; then
    format_storage "stale data dir: meta.properties has another node.id"
  else
    say "data dir ${DATA_DIR#$ROOT/} already formatted ($(grep '^cluster.id=' "$DATA_DIR/meta.properties"))"
  fi
}

launch() {
  : >"$OUT_FILE"; rm -f "$PID_FILE"
  echo "----- start $(date -u +%FT%TZ) -----" >>"$LOG_FILE"
  START_LINE="$(wc -l <"$LOG_FILE")"
  java_cmd kafka.Kafka "$PROPS"
  # setsid + nohup: the broker outlives the shell, make or pytest that started it. The
  # inner shell writes its own pid, then execs java, so the pid file names the JVM.
  setsid bash -c 'echo $$ >"$0"; exec nohup "$@"' "$PID_FILE" "${JAVA_CMD[@]}" \
    >"$OUT_FILE" 2>&1 </dev/null 9>&- &  # 9>&-: the broker must not inherit the start lock
  local i
  for i in $(seq 50); do [[ -s "$PID_FILE" ]] && break; sleep 0.1; done
  say "started kafka.Kafka (pid $(cat "$PID_FILE")), log ${LOG_FILE#$ROOT/}"
}

new_log() { tail -n +"$((START_LINE + 1))" "$LOG_FILE" 2>/dev/null; cat "$OUT_FILE" 2>/dev/null; }

# Waits for a ready broker. Returns 0 ready, 1 timeout, 2 our process died.
wait_ready() {
  local deadline=$((SECONDS + WAIT_S)) msg
  while ((SECONDS < deadline)); do
    if msg="$(probe)"; then say "$msg"; return 0; fi
    if [[ -f "$PID_FILE" ]] && ! pid_alive; then return 2; fi
    sleep 0.5
  done
  LAST_PROBE="$msg"; return 1
}

explain_failure() {
  local log; log="$(new_log)"
  echo "----- last lines of ${LOG_FILE#$ROOT/} and ${OUT_FILE#$ROOT/} -----" >&2
  echo "$log" | grep -v '^\s*at ' | tail -n 25 >&2
  echo "-----" >&2
  if grep -q 'Address already in use' <<<"$log"; then
    die "port $KAFKA_PORT or $KAFKA_CONTROLLER_PORT is already in use by another process (set KAFKA_PORT / KAFKA_CONTROLLER_PORT)"
  elif grep -qi 'OutOfMemoryError\|Could not reserve enough space' <<<"$log"; then
    die "the JVM ran out of memory (KAFKA_HEAP=$HEAP)"
  elif grep -q 'UnsupportedClassVersionError' <<<"$log"; then
    die "java is too old for Kafka 4 (needs 17+): $(java -version 2>&1 | head -1)"
  fi
}

stale_state_in_log() {  # the broker died on its data dir (not on ports, memory or java)
  local errors; errors="$(new_log | grep -E 'ERROR|FATAL|Exception' || true)"
  ! grep -q 'Address already in use' <<<"$errors" &&
    grep -qiE 'InconsistentClusterIdException|Invalid cluster\.id|meta\.properties|directory\.id|KafkaStorageException|CorruptRecordException|bootstrap metadata|Found unexpected' <<<"$errors"
}

cmd_start() {
  mkdir -p "$CACHE" "$RUN_DIR"
  # One start at a time per port (parallel `make test` / pytest sessions): the second
  # waits here, then finds the first one's broker and reuses it.
  exec 9>"$RUN_DIR/.start.lock"
  flock -w 180 9 || die "another scripts/kafka.sh start holds ${RUN_DIR#$ROOT/}/.start.lock for 180s"
  local msg rc=0
  msg="$(probe)" || rc=$?
  if ((rc == 3)) && ! pid_alive; then  # maybe a broker someone else started, still starting
    say "$msg; waiting up to 15s in case it is a broker still starting"
    local deadline=$((SECONDS + 15))
    while ((rc == 3 && SECONDS < deadline)); do sleep 1; rc=0; msg="$(probe)" || rc=$?; done
  fi
  [[ -z "$SASL_SSL_PORT" ]] || tls_client_env
  if ((rc == 0)) && [[ -n "$SASL_SSL_PORT" ]] && ! pid_alive; then
    # Its certificates and users live in the run dir of whoever started it: ours would not match.
    die "a broker answers on $KAFKA_HOST:$KAFKA_PORT but was not started from this checkout, so its CA and SCRAM users are not in ${RUN_DIR#$ROOT/}; stop it with scripts/kafka-sasl.sh stop in the checkout that started it, or give this one other ports (KAFKA_SASL_SSL_PORT, KAFKA_SASL_INTERNAL_PORT, KAFKA_SASL_CONTROLLER_PORT, KAFKA_MTLS_PORT)"
  fi
  if ((rc == 0)); then
    if pid_alive; then say "reusing the running broker (pid $(cat "$PID_FILE")): $msg"
    else say "reusing a broker already answering (not started by this script): $msg"; fi
    return 0
  fi
  if pid_alive; then  # our broker is still starting up: just wait for it
    say "broker pid $(cat "$PID_FILE") is running but not ready yet; waiting up to ${WAIT_S}s"
    START_LINE="$(wc -l <"$LOG_FILE" 2>/dev/null || echo 0)"
    wait_ready && return 0
    explain_failure; die "broker pid $(cat "$PID_FILE") did not become ready: ${LAST_PROBE:-process exited}"
  fi
  rm -f "$PID_FILE"
  if ((rc == 3)); then
    die "$msg; port $KAFKA_PORT is held by something that is not a ready Kafka broker (set KAFKA_PORT)"
  fi
  command -v java >/dev/null || die "java not found: install a JDK >= 17"
  resolve_jars
  [[ -z "$SASL_SSL_PORT" ]] || tls_make_certs
  write_properties
  say "wrote ${PROPS#$ROOT/} (PLAINTEXT $KAFKA_HOST:$KAFKA_PORT, CONTROLLER $KAFKA_HOST:$KAFKA_CONTROLLER_PORT)"
  ensure_formatted
  local attempt
  for attempt in 1 2; do
    launch
    say "waiting up to ${WAIT_S}s for ApiVersions + Metadata on $KAFKA_HOST:$KAFKA_PORT"
    rc=0; wait_ready || rc=$?
    ((rc == 0)) && return 0
    if ((rc == 2)) && ((attempt == 1)) && stale_state_in_log; then
      say "broker exited on stale state in ${DATA_DIR#$ROOT/}; reformatting and retrying once"
      format_storage "broker rejected the old data dir"
      continue
    fi
    explain_failure
    if ((rc == 2)); then die "broker process exited during startup (see the log above)"; fi
    cmd_stop >/dev/null || true
    die "broker not ready after ${WAIT_S}s: ${LAST_PROBE:-}"
  done
}

cmd_stop() {
  if ! pid_alive; then
    rm -f "$PID_FILE"
    if probe >/dev/null; then
      say "a broker answers on $KAFKA_HOST:$KAFKA_PORT but was not started by this script; leaving it alone"
    else
      say "no broker started by this script is running"
    fi
    return 0
  fi
  local pid; pid="$(cat "$PID_FILE")"
  say "stopping broker pid $pid (SIGTERM, controlled shutdown)"
  kill -TERM "$pid"
  local deadline=$((SECONDS + 30))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.3; done
  if kill -0 "$pid" 2>/dev/null; then
    say "pid $pid still alive after 30s; SIGKILL"; kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
  fi
  rm -f "$PID_FILE"
  say "stopped"
}

cmd_status() {
  local msg
  if msg="$(probe)"; then
    if pid_alive; then say "running (pid $(cat "$PID_FILE")): $msg"
    else say "answering (not started by this script): $msg"; fi
    return 0
  fi
  if pid_alive; then say "pid $(cat "$PID_FILE") alive but not ready: $msg"
  else say "not running: $msg"; fi
  return 1
}

cmd_wait() {
  START_LINE="$(wc -l <"$LOG_FILE" 2>/dev/null || echo 0)"
  say "waiting up to ${WAIT_S}s for a Kafka broker on $KAFKA_HOST:$KAFKA_PORT"
  wait_ready || die "no ready Kafka broker on $KAFKA_HOST:$KAFKA_PORT: ${LAST_PROBE:-process exited}"
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  wait) cmd_wait ;;
  *) echo "usage: $0 start|stop|status|wait" >&2; exit 2 ;;
esac
