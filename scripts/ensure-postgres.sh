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

exec bash "$(dirname "$0")/install-debian-package.sh" ensure-postgres postgresql "the PostgreSQL export test"
