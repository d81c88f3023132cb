#!/usr/bin/env bash
# Makes sure Redis's server binary (redis-server) exists for the deployment tier (tests/deployment), whose
# CeleryExecutor uses Redis as its broker. The tests start their own throw-away server (free port, temp
# dir, no persistence) and stop it by PID; this script only installs Debian's `redis-server` package
# when it is absent. Idempotent: does nothing when the binary is already there. Installing needs root
# (as in CI containers). Mirrors scripts/ensure-postgres.sh.
set -euo pipefail

have_redis() {
    command -v redis-server >/dev/null 2>&1
}

if have_redis; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "ensure-redis: Redis is missing and installing it needs root; the deployment tier will be skipped" >&2
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-redis: no apt-get here; install Redis (redis-server) yourself to run the deployment tier" >&2
    exit 0
fi

echo "ensure-redis: installing Debian's redis-server package" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends redis-server >/dev/null
