#!/usr/bin/env bash
# Installs the npm clients the end-to-end tests and benchmarks use, at pinned
# versions, from the npm registry into a cache directory:
#   yarn (classic) and pnpm  → $DIR/clients   (always)
#   Verdaccio (peer server)  → $DIR/verdaccio (with --verdaccio; benchmarks)
# DIR is $COFFER_NPM_TOOLS, default ~/.cache/coffer/npm-tools. Idempotent:
# an installed version is not fetched again.
set -euo pipefail
YARN_VERSION=1.22.22
PNPM_VERSION=10.34.9
VERDACCIO_VERSION=6.8.0

DIR="${COFFER_NPM_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/coffer/npm-tools}"
command -v npm >/dev/null || { echo "npm is required (Debian: apt-get install -y npm)" >&2; exit 1; }

# The installs use the machine's configured registry, never a test server's,
# and their own cache so they do not touch a user's.
export NPM_CONFIG_USERCONFIG=/dev/null
export npm_config_cache="$DIR/.npm-cache"
export NPM_CONFIG_UPDATE_NOTIFIER=false

installed() { # dir package version
  [ -f "$1/node_modules/$2/package.json" ] &&
    node -e 'process.exit(require(process.argv[1]).version === process.argv[2] ? 0 : 1)' \
      "$1/node_modules/$2/package.json" "$3"
}

clients="$DIR/clients"
if ! installed "$clients" yarn "$YARN_VERSION" || ! installed "$clients" pnpm "$PNPM_VERSION"; then
  echo "== installing yarn@$YARN_VERSION and pnpm@$PNPM_VERSION into $clients" >&2
  mkdir -p "$clients"
  printf '{"name":"coffer-npm-clients","private":true}\n' >"$clients/package.json"
  npm install --prefix "$clients" --no-audit --no-fund --loglevel=error \
    "yarn@$YARN_VERSION" "pnpm@$PNPM_VERSION" >&2
fi

if [ "${1:-}" = "--verdaccio" ]; then
  v="$DIR/verdaccio"
  if ! installed "$v" verdaccio "$VERDACCIO_VERSION"; then
    echo "== installing verdaccio@$VERDACCIO_VERSION into $v" >&2
    mkdir -p "$v"
    # node-fetch 2.7.0: newer 2.x releases fail to install here.
    cat >"$v/package.json" <<JSON
{"name":"coffer-bench-verdaccio","private":true,
 "dependencies":{"verdaccio":"$VERDACCIO_VERSION"},
 "overrides":{"node-fetch":"2.7.0"}}
JSON
    npm install --prefix "$v" --no-audit --no-fund --loglevel=error >&2
  fi
fi
echo "$DIR"
