# Sourced by scripts/kafka.sh when KAFKA_SASL_SSL_PORT is set (scripts/kafka-sasl.sh):
# certificates, SCRAM users and the SASL_SSL part of the broker's properties.
# Test credentials for a loopback-only broker; the client user is what the tests log in as.
SASL_ADMIN_USER=admin
SASL_ADMIN_PASSWORD="${KAFKA_SASL_ADMIN_PASSWORD:-admin-secret}"
SASL_CLIENT_USER=lensbridge
SASL_CLIENT_PASSWORD="${KAFKA_SASL_CLIENT_PASSWORD:-lensbridge-secret}"
MTLS_PORT="${KAFKA_MTLS_PORT:-19097}"  # an SSL listener that requires a client certificate
TLS_DIR="$RUN_DIR/tls"
TLS_STORE_PASSWORD=lensbridge-test-store
CLIENT_ENV="$RUN_DIR/client.env"
MTLS_ENV="$RUN_DIR/mtls.env"

tls_listeners() { echo ",SASL_SSL://$KAFKA_HOST:$SASL_SSL_PORT,SSL://$KAFKA_HOST:$MTLS_PORT"; }
tls_protocols() { echo ",SASL_SSL:SASL_SSL,SSL:SSL"; }

# A CA, a broker certificate signed by it (SAN IP:127.0.0.1, DNS:localhost; packed as a
# PKCS12 keystore for the broker) and a client certificate for the mTLS listener. Made once;
# a missing or expiring file means remake all.
tls_make_certs() {
  if [[ -s "$TLS_DIR/ca.pem" && -s "$TLS_DIR/broker.p12" && -s "$TLS_DIR/client.pem" ]] \
      && openssl x509 -checkend 86400 -noout -in "$TLS_DIR/ca.pem" >/dev/null 2>&1; then
    say "TLS: reusing CA and broker certificate in ${TLS_DIR#$ROOT/}"; return
  fi
  command -v openssl >/dev/null || die "openssl not found: install it (Debian: apt-get install openssl)"
  rm -rf "$TLS_DIR"; mkdir -p "$TLS_DIR"
  local log="$TLS_DIR/openssl.log"
  {
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=lensbridge test CA" \
      -keyout "$TLS_DIR/ca.key" -out "$TLS_DIR/ca.pem" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
      -keyout "$TLS_DIR/broker.key" -out "$TLS_DIR/broker.csr"
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' \
      >"$TLS_DIR/broker.ext"
    openssl x509 -req -in "$TLS_DIR/broker.csr" -CA "$TLS_DIR/ca.pem" -CAkey "$TLS_DIR/ca.key" \
      -CAcreateserial -days 825 -extfile "$TLS_DIR/broker.ext" -out "$TLS_DIR/broker.pem"
    openssl req -newkey rsa:2048 -nodes -subj "/CN=lensbridge-client" \
      -keyout "$TLS_DIR/client.key" -out "$TLS_DIR/client.csr"
    printf 'extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n' >"$TLS_DIR/client.ext"
    openssl x509 -req -in "$TLS_DIR/client.csr" -CA "$TLS_DIR/ca.pem" -CAkey "$TLS_DIR/ca.key" \
      -CAcreateserial -days 825 -extfile "$TLS_DIR/client.ext" -out "$TLS_DIR/client.pem"
    openssl pkcs12 -export -name broker -in "$TLS_DIR/broker.pem" -inkey "$TLS_DIR/broker.key" \
      -certfile "$TLS_DIR/ca.pem" -passout "pass:$TLS_STORE_PASSWORD" -out "$TLS_DIR/broker.p12"
  } >"$log" 2>&1 || { cat "$log" >&2; die "openssl could not make the test certificates (see above)"; }
  say "TLS: made a CA and a broker certificate (IP:127.0.0.1, DNS:localhost) in ${TLS_DIR#$ROOT/}"
}

tls_properties() {  # appended to server.properties
  cat <<EOF
# SASL_SSL for clients (scripts/kafka-tls.sh): SCRAM-SHA-512 users, TLS with the test CA.
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
ssl.keystore.type=PKCS12
ssl.keystore.location=$TLS_DIR/broker.p12
ssl.keystore.password=$TLS_STORE_PASSWORD
ssl.key.password=$TLS_STORE_PASSWORD
ssl.client.auth=none
# The SSL listener on $MTLS_PORT requires a client certificate signed by the test CA (mTLS).
ssl.truststore.type=PEM
ssl.truststore.location=$TLS_DIR/ca.pem
listener.name.ssl.ssl.client.auth=required
EOF
}

tls_format_args() {  # SCRAM credentials stored by StorageTool at format time
  FORMAT_ARGS=(--add-scram "SCRAM-SHA-512=[name=$SASL_ADMIN_USER,password=$SASL_ADMIN_PASSWORD]"
               --add-scram "SCRAM-SHA-512=[name=$SASL_CLIENT_USER,password=$SASL_CLIENT_PASSWORD]")
}

tls_fingerprint() {  # reformat when the users or passwords change
  printf '%s' "$SASL_ADMIN_USER:$SASL_ADMIN_PASSWORD $SASL_CLIENT_USER:$SASL_CLIENT_PASSWORD" \
    | sha256sum | cut -c1-12
}

tls_client_env() {  # what a client sets to reach this broker (read by the test fixture)
  cat >"$CLIENT_ENV" <<EOF
KAFKA_BOOTSTRAP_SERVERS=$KAFKA_HOST:$KAFKA_SASL_SSL_PORT
KAFKA_SECURITY_PROTOCOL=SASL_SSL
KAFKA_SASL_MECHANISM=SCRAM-SHA-512
KAFKA_SASL_USERNAME=$SASL_CLIENT_USER
KAFKA_SASL_PASSWORD=$SASL_CLIENT_PASSWORD
KAFKA_SSL_CAFILE=$TLS_DIR/ca.pem
EOF
  cat >"$MTLS_ENV" <<EOF
KAFKA_BOOTSTRAP_SERVERS=$KAFKA_HOST:$MTLS_PORT
KAFKA_SECURITY_PROTOCOL=SSL
KAFKA_SSL_CAFILE=$TLS_DIR/ca.pem
KAFKA_SSL_CERTFILE=$TLS_DIR/client.pem
KAFKA_SSL_KEYFILE=$TLS_DIR/client.key
EOF
}
