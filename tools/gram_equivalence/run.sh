#!/usr/bin/env bash
# The GRAM equivalence check end to end: reference environment (if needed), the tiny official model
# and its outputs, the official preprocessing on test media, then gramviz's conversion and the
# comparison tables.
#
#   tools/gram_equivalence/run.sh [OUT]          (default OUT: /tmp/gram-ref/out)
#
# Environment:
#   GRAM_REF        working folder of the reference side (default /tmp/gram-ref)
#   REF_VENV        the reference venv (default $GRAM_REF/venv)
#   GRAM_DIR        the official GRAM checkout (default $GRAM_REF/GRAM)
#   GRAMVIZ_PYTHON  gramviz's interpreter (default: the repository's .venv, else python3)
#   SKIP_PREPROCESS=1  skip the preprocessing comparison (step 5)
# plus those of setup.sh (PYTHON, GRAM_REPO, GRAM_COMMIT).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HERE/../.." && pwd)"
GRAM_REF="${GRAM_REF:-/tmp/gram-ref}"
REF_VENV="${REF_VENV:-$GRAM_REF/venv}"
GRAM_DIR="${GRAM_DIR:-$GRAM_REF/GRAM}"
OUT="${1:-$GRAM_REF/out}"
if [ -z "${GRAMVIZ_PYTHON:-}" ]; then
  if [ -x "$REPO_ROOT/.venv/bin/python" ]; then GRAMVIZ_PYTHON="$REPO_ROOT/.venv/bin/python"; else GRAMVIZ_PYTHON=python3; fi
fi

step() { echo; echo "== $*"; }
# run a reference-side script with its log in $OUT/logs; show the summary, or the log's end on failure
logged() {
  local name=$1; shift
  mkdir -p "$OUT/logs"
  if "$@" >"$OUT/logs/$name.log" 2>&1; then
    grep -v -E "^(Please 'pip install xformers'|[0-9/]+ [0-9:]+ - INFO|\[src/libmpg123|Some weights of|You should probably TRAIN)" "$OUT/logs/$name.log" | grep -v -i "warn" | tail -n 15
  else
    echo "$name failed; the end of $OUT/logs/$name.log:" >&2
    tail -n 30 "$OUT/logs/$name.log" >&2
    exit 1
  fi
}

step "reference environment"
bash "$HERE/setup.sh" "$REF_VENV" "$GRAM_DIR"

step "official GRAM at tiny size (reference venv)"
mkdir -p "$OUT"
logged build_official "$REF_VENV/bin/python" "$HERE/build_official.py" --gram "$GRAM_DIR" --out "$OUT"

if [ "${SKIP_PREPROCESS:-0}" != 1 ]; then
  step "official preprocessing on test media (reference venv)"
  logged preprocess_official "$REF_VENV/bin/python" "$HERE/preprocess_official.py" --gram "$GRAM_DIR" --out "$OUT"
else
  rm -rf "$OUT/preprocess"
fi

step "gramviz: convert-gram, load_model, compare ($GRAMVIZ_PYTHON)"
cd "$REPO_ROOT"
"$GRAMVIZ_PYTHON" "$HERE/compare.py" --out "$OUT" --sensitivity
