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
# The HTML report is loaded in headless Chromium (reports/tests/html_page.rs):
# its DOM after rendering and a screenshot are checked.
command -v chromium >/dev/null || need+=(chromium)
# The config schema is checked with Python's jsonschema (config/tests/schema.rs),
# run by whichever python3 is first on PATH: pip installs into that one (a
# pyenv Python does not see Debian's packages); Debian's packages are the
# fallback where pip cannot.
if ! python3 -c 'import jsonschema, yaml' 2>/dev/null; then
  python3 -m pip install -q --disable-pip-version-check 'jsonschema>=4.10,<5' 'PyYAML>=6,<7' \
    || need+=(python3-jsonschema python3-yaml)
fi
if [ ${#need[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq && $sudo apt-get install -y -qq "${need[@]}"
fi

cargo test --workspace --locked "$@"
