#!/usr/bin/env bash
# Builds the pinned OCI clients (and the peer registry used by benchmarks)
# from the tools modules under tools/ into .tools/bin. Each tool has its own
# module so that their dependency graphs never mix; versions are pinned in
# tools/*/go.mod. Cold builds of cosign and helm take ~10 minutes each on two
# cores; the Go build cache makes later runs take seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="$PWD/.tools/bin"
mkdir -p "$bin"
build() { # module-dir package binary-name
  local dir=$1 pkg=$2 name=$3
  if [ -x "$bin/$name" ] && [ "$bin/$name" -nt "tools/$dir/go.mod" ]; then return; fi
  echo "building $name ($pkg)" >&2
  (cd "tools/$dir" && go build -trimpath -o "$bin/$name" "$pkg")
}
build clients github.com/google/go-containerregistry/cmd/crane crane
build clients oras.land/oras/cmd/oras oras
build clients github.com/regclient/regclient/cmd/regctl regctl
build cosign github.com/sigstore/cosign/v2/cmd/cosign cosign
build helm helm.sh/helm/v3/cmd/helm helm
build registry github.com/distribution/distribution/v3/cmd/registry registry
# The conformance suite is a test binary.
if [ ! -x "$bin/conformance.test" ] || [ "$bin/conformance.test" -ot tools/conformance/go.mod ]; then
  echo "building conformance.test" >&2
  (cd tools/conformance && go test -c -o "$bin/conformance.test" github.com/opencontainers/distribution-spec/conformance)
fi
if ! command -v skopeo >/dev/null; then
  echo "installing skopeo (Debian)" >&2
  apt-get install -y -qq skopeo >/dev/null
fi
