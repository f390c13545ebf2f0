#!/usr/bin/env bash
# Runs the benchmarks and prints Markdown tables for docs/benchmarks.md.
# Run it on an otherwise idle machine: every figure is relative to the
# machine's own limits measured in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || apt-get install -y -qq wrk >/dev/null 2>&1 || true
go run ./bench/raw "$@"
# PyPI: needs Debian's python3-venv (pip) besides wrk.
go run ./bench/pypi
go run ./bench/npm
# Maven: needs mvn and Debian's Maven plugins (see .ci/run) besides wrk.
go run ./bench/maven
