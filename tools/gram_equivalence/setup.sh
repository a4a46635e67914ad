#!/usr/bin/env bash
# Reference environment for the GRAM equivalence check: a separate virtual environment with the
# official code's pins (requirements.txt) and a checkout of the official GRAM code.
#
#   tools/gram_equivalence/setup.sh [VENV_DIR] [GRAM_DIR]
#
#   VENV_DIR  the reference virtual environment (default /tmp/gram-ref/venv); never inside the repo
#   GRAM_DIR  the checkout of ispamm/GRAM (default /tmp/gram-ref/GRAM); kept if it already has
#             model/gram.py
#
# Environment:
#   PYTHON       interpreter for the venv (default: python3.11, else python3.10; torch 2.0.1 has
#                wheels for Python 3.8-3.11)
#   GRAM_REPO    where to clone GRAM from (default https://github.com/ispamm/GRAM; a local clone works)
#   GRAM_COMMIT  the commit to check out (default b70c5c2)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HERE/../.." && pwd)"
VENV="${1:-/tmp/gram-ref/venv}"
GRAM="${2:-/tmp/gram-ref/GRAM}"
GRAM_REPO="${GRAM_REPO:-https://github.com/ispamm/GRAM}"
GRAM_COMMIT="${GRAM_COMMIT:-b70c5c2}"

abspath() { python3 -c 'import os, sys; print(os.path.realpath(sys.argv[1]))' "$1"; }
case "$(abspath "$VENV")/" in
  "$(abspath "$REPO_ROOT")"/*) echo "setup.sh: put the reference venv outside the repository ($VENV)" >&2; exit 2 ;;
esac

# --- the official code -----------------------------------------------------------------------
if [ -f "$GRAM/model/gram.py" ]; then
  echo "GRAM checkout: $GRAM (kept)"
else
  echo "GRAM checkout: cloning $GRAM_REPO at $GRAM_COMMIT into $GRAM"
  mkdir -p "$(dirname "$GRAM")"
  filter=()
  case "$GRAM_REPO" in *://*) filter=(--filter=blob:none) ;; esac
  git clone -q --no-checkout "${filter[@]}" "$GRAM_REPO" "$GRAM"
  # The annotation files and caption-metric tools (large, unused here) are left out.
  git -C "$GRAM" sparse-checkout set --no-cone '/*' '!/datasets/' '!/evaluation_tools/'
  git -C "$GRAM" -c advice.detachedHead=false checkout -q "$GRAM_COMMIT"
fi
echo "GRAM commit: $(git -C "$GRAM" rev-parse --short HEAD 2>/dev/null || echo unknown)"

# --- the reference environment ---------------------------------------------------------------
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import torch, transformers, cv2, librosa, safetensors, easydict' 2>/dev/null; then
  echo "reference venv: $VENV (kept)"
else
  if [ -z "${PYTHON:-}" ]; then
    for candidate in python3.11 python3.10; do
      if command -v "$candidate" >/dev/null && "$candidate" -c 'import venv' 2>/dev/null; then PYTHON=$candidate; break; fi
    done
  fi
  [ -n "${PYTHON:-}" ] || { echo "setup.sh: need Python 3.10 or 3.11 (set PYTHON=...)" >&2; exit 2; }
  "$PYTHON" -c 'import sys; assert (3, 8) <= sys.version_info[:2] <= (3, 11), sys.version' \
    || { echo "setup.sh: torch 2.0.1 needs Python 3.8-3.11, $PYTHON is not" >&2; exit 2; }
  echo "reference venv: creating $VENV with $("$PYTHON" --version)"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  # The CPU wheels are much smaller; PyPI's torch 2.0.1 pulls the CUDA 11.7 libraries (~2.5 GB).
  if "$VENV/bin/python" -c 'import urllib.request as u; u.urlopen("https://download.pytorch.org/whl/cpu/torch/", timeout=10)' 2>/dev/null; then
    echo "installing the CPU wheels of torch 2.0.1 from download.pytorch.org"
    "$VENV/bin/python" -m pip install -q torch==2.0.1 torchvision==0.15.2 torchaudio==2.0.2 \
      --index-url https://download.pytorch.org/whl/cpu
  else
    echo "download.pytorch.org is not reachable: torch 2.0.1 comes from PyPI (CUDA build, runs on CPU)"
  fi
  "$VENV/bin/python" -m pip install -q -r "$HERE/requirements.txt"
fi
"$VENV/bin/python" - <<'EOF'
import sys, torch, torchvision, torchaudio, transformers, numpy, cv2, librosa
print("reference venv: Python %s, torch %s, torchvision %s, torchaudio %s, transformers %s, numpy %s, "
      "opencv %s, librosa %s" % (sys.version.split()[0], torch.__version__, torchvision.__version__,
      torchaudio.__version__, transformers.__version__, numpy.__version__, cv2.__version__, librosa.__version__))
EOF
