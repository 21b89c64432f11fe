#!/usr/bin/env bash
# Installs the tools the deploy tests need that pip cannot provide, idempotently:
#
#   promtool + prometheus   Debian package `prometheus` (promtool check/test, the real server for
#                           tests/integration/test_prometheus.py)
#
# Prints one line per action; exits non-zero with the reason when a tool cannot be installed.
# Needs root (or sudo) and Debian's package archive only when something is missing.
set -euo pipefail

say() { echo "install-tools: $*"; }
die() { echo "install-tools: ERROR: $*" >&2; exit 1; }

have_all() {
  command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1
}

if have_all; then
  say "promtool and prometheus present ($(promtool --version 2>&1 | head -n1))"
  exit 0
fi

command -v apt-get >/dev/null 2>&1 \
  || die "promtool/prometheus missing and apt-get not found; install Prometheus >= 2.42 so that 'promtool' and 'prometheus' are on PATH"

SUDO=()
if [[ "$(id -u)" != 0 ]]; then
  command -v sudo >/dev/null 2>&1 || die "need root (or sudo) to apt-get install prometheus"
  SUDO=(sudo -n)
fi

export DEBIAN_FRONTEND=noninteractive
APT_QUIET=(-qq -o Dpkg::Use-Pty=0)
LOG="$(mktemp -t install-tools.XXXXXX.log)"
# apt/dpkg chatter goes to $LOG and is shown only when a step fails.
apt_get() { "${SUDO[@]}" apt-get "${APT_QUIET[@]}" "$@" >>"$LOG" 2>&1 || { cat "$LOG" >&2; return 1; }; }

# The package's maintainer script would start a prometheus daemon on :9090 where an init
# system answers; tests start their own server on a free loopback port, so forbid service
# starts during the install (the usual policy-rc.d mechanism) unless a policy exists already.
POLICY=/usr/sbin/policy-rc.d
if [[ ! -e "$POLICY" ]]; then
  "${SUDO[@]}" sh -c "printf '#!/bin/sh\nexit 101\n' > $POLICY && chmod 755 $POLICY"
  trap '"${SUDO[@]}" rm -f "$POLICY"; rm -f "$LOG"' EXIT
else
  trap 'rm -f "$LOG"' EXIT
fi

if ! apt-cache show prometheus >/dev/null 2>&1; then
  say "apt-get update (package lists do not know 'prometheus' yet)"
  apt_get update || die "apt-get update failed; check the Debian package archive is reachable"
fi

say "apt-get install prometheus (gives promtool and the prometheus server)"
if ! apt_get install -y --no-install-recommends prometheus 2>/dev/null; then
  # Lists may be stale (a package version that the archive no longer serves): refresh once, retry.
  say "install failed; apt-get update and retry"
  : >"$LOG"
  apt_get update || die "apt-get update failed"
  apt_get install -y --no-install-recommends prometheus \
    || die "apt-get install prometheus failed (see apt-get output above)"
fi

# The package's postinst may start the daemon where an init system runs it anyway; that is
# harmless for the tests (they use their own port) and not ours to stop.
have_all || die "package installed but promtool/prometheus still not on PATH"
say "installed $(promtool --version 2>&1 | head -n1)"
