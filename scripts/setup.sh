#!/usr/bin/env bash
# Set up textshift on a fresh machine: a virtual environment in .venv with a CPU build of PyTorch,
# textshift (editable) and, with --dev, the test tools and Debian's Chromium for the browser tests.
set -euo pipefail
cd "$(dirname "$0")/.."

dev=0
[[ "${1:-}" == "--dev" ]] && dev=1

python=${PYTHON:-}
if [[ -z "$python" ]]; then
  for candidate in python3.11 python3.12 python3; do
    if command -v "$candidate" >/dev/null 2>&1; then python=$candidate; break; fi
  done
fi
[[ -n "$python" ]] || { echo "setup: no python3 found; install Python 3.11 or newer" >&2; exit 1; }

if [[ ! -x .venv/bin/python ]]; then
  echo "setup: creating .venv with $($python --version)"
  "$python" -m venv .venv
fi
pip() { .venv/bin/python -m pip --disable-pip-version-check -q "$@"; }

# Pin torch first: a bare 'torch' requirement can pull a multi-GB CUDA build.
if ! .venv/bin/python -c "import torch" >/dev/null 2>&1; then
  echo "setup: installing torch==2.13.0 (CPU build)"
  pip install "torch==2.13.0"
fi
extras=""
[[ $dev == 1 ]] && extras="[dev]"
echo "setup: installing textshift$extras"
pip install -e ".$extras"

if [[ $dev == 1 && ! -x /usr/bin/chromium ]]; then
  echo "setup: installing Debian chromium and chromium-driver for the browser tests"
  sudo_cmd=""
  [[ $(id -u) -ne 0 ]] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq chromium chromium-driver >/dev/null
fi
echo "setup: done"
