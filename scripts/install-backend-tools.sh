#!/usr/bin/env bash
# Builds the S3-compatible test server (versitygw, pinned in
# tools/versitygw/go.mod) into .tools/bin. It is a test-only tool: it is
# never linked into Coffer. The S3 tests (internal/blob/s3/s3test) start it
# on a loopback port over a temporary directory.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="$PWD/.tools/bin"
mkdir -p "$bin"
if [ -x "$bin/versitygw" ] && [ "$bin/versitygw" -nt tools/versitygw/go.mod ]; then exit 0; fi
echo "building versitygw (github.com/versity/versitygw/cmd/versitygw)" >&2
(cd tools/versitygw && go build -trimpath -o "$bin/versitygw" github.com/versity/versitygw/cmd/versitygw)
