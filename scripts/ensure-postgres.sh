#!/usr/bin/env bash
# Makes sure PostgreSQL's server binaries (initdb, pg_ctl, postgres) exist for the SQL export tests.
# The tests start their own throw-away cluster (initdb + pg_ctl, free port, temp dir) and stop it
# by PID; this script only installs Debian's `postgresql` package when it is absent. Idempotent:
# does nothing when the binaries are already there. Installing needs root (as in CI containers).
set -euo pipefail

have_postgres() {
    command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1 && return 0
    compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null 2>&1
}

if have_postgres; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "ensure-postgres: PostgreSQL is missing and installing it needs root; the PostgreSQL export test will be skipped" >&2
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-postgres: no apt-get here; install PostgreSQL yourself to run the PostgreSQL export test" >&2
    exit 0
fi

echo "ensure-postgres: installing Debian's postgresql package" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends postgresql >/dev/null
