#!/usr/bin/env bash
# install-debian-package.sh LABEL PACKAGE WHAT: install Debian's PACKAGE for the tests that need it.
# Called by scripts/ensure-postgres.sh and scripts/ensure-redis.sh once they found the binaries absent.
# Without root or apt-get it only says which tests (WHAT) will be skipped, and exits 0: the suite still
# runs. Installing needs root (as in CI containers).
set -euo pipefail
label=$1 package=$2 what=$3

if [ "$(id -u)" -ne 0 ]; then
    echo "$label: $package is missing and installing it needs root; $what will be skipped" >&2
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "$label: no apt-get here; install $package yourself to run $what" >&2
    exit 0
fi

echo "$label: installing Debian's $package package" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "$package" >/dev/null
