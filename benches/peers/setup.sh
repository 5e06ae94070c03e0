#!/usr/bin/env bash
# Installs the peer side of `circuitscope bench peers` (PyTorch, Captum, scikit-learn) into
# benches/peers/.venv. A manual step, never run by the test command: PyTorch from PyPI is the
# CUDA build, about 3.5 GB of downloads and 6 GB installed.
#
#   bash benches/peers/setup.sh
#   cargo run --release -- bench peers
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
python="${PYTHON:-python3}"
if [ ! -x "$here/.venv/bin/python" ]; then
    "$python" -m venv "$here/.venv"
fi
"$here/.venv/bin/pip" install --quiet --upgrade pip
"$here/.venv/bin/pip" install -r "$here/requirements.txt"
"$here/.venv/bin/python" -c 'import torch, captum, sklearn, safetensors; print("peers ready: torch", torch.__version__, "captum", captum.__version__, "scikit-learn", sklearn.__version__)'
