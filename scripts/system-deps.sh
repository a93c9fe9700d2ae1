#!/usr/bin/env bash
# Installs the Debian packages the tests and the demo use, when they are missing.
# Usage: scripts/system-deps.sh COMMAND=PACKAGE ...   e.g. redis-server=redis-server
# As root it runs apt-get (one 'apt-get update' first); otherwise it only reports.
set -u
missing=()
for pair in "$@"; do
  cmd=${pair%%=*}; pkg=${pair#*=}
  command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "system-deps: missing ${missing[*]}; install them (apt-get install ${missing[*]}) or run as root" >&2
  exit 0
fi
echo "system-deps: installing ${missing[*]} with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
status=$?
# Debian starts services it installs; the tests start their own on free ports.
for svc in redis-server prometheus rabbitmq-server; do
  command -v service >/dev/null 2>&1 && service "$svc" stop >/dev/null 2>&1 || true
done
exit $status
