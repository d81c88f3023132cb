#!/usr/bin/env bash
# Makes sure Redis's server binary (redis-server) exists for the deployment tier (tests/deployment), whose
# CeleryExecutor uses Redis as its broker. The tests start their own throw-away server (free port, temp
# dir, no persistence) and stop it by PID; this script only installs Debian's `redis-server` package
# when it is absent. Idempotent: does nothing when the binary is already there. Installing needs root
# (as in CI containers).
set -euo pipefail

have_redis() {
    command -v redis-server >/dev/null 2>&1
}

if have_redis; then
    exit 0
fi

exec bash "$(dirname "$0")/install-debian-package.sh" ensure-redis redis-server "the deployment tier"
