#!/usr/bin/env bash
# The whole test suite. Installs what the tests need first, so that a fresh
# Debian machine (or CI, as root, without a terminal) needs nothing else.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v cargo >/dev/null || { echo "cargo is required (https://rustup.rs)" >&2; exit 1; }
# Debian packages the tests use; none are optional.
command -v curl >/dev/null || need+=(curl)
# VAST output is validated against the IAB XSDs.
command -v xmllint >/dev/null || need+=(libxml2-utils)
# The config schema is checked with Python's jsonschema (config/tests/schema.rs).
python3 -c 'import jsonschema, yaml' 2>/dev/null || need+=(python3-jsonschema python3-yaml)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq && $sudo apt-get install -y -qq "${need[@]}"
fi

cargo test --workspace --locked "$@"
