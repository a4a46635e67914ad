"""Mutation check: do the tests catch deliberate bugs?

Each mutation below is a small, plausible bug. For each one this script copies the repository
(the files git tracks, and untracked ones it does not ignore) into a temporary folder, applies the
bug there, runs the tests that should catch it, and reports whether they failed (the bug was
"killed") or passed (it "survived"). The working tree is never modified.

    .venv/bin/python tools/mutation_check.py             # every mutation
    .venv/bin/python tools/mutation_check.py --list      # what is checked
    .venv/bin/python tools/mutation_check.py --only tie-rule,dam-labels

Each set of tests first runs on the unmutated copy and must pass there, so that a failure is the
bug's doing. Exit status 1 when a bug survives (or a mutation no longer applies because the code it
edits changed: update its text here), 2 when the unmutated tree already fails, 0 otherwise.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutation:
    name: str
    what: str  # the bug, in words
    path: str  # the file it edits, relative to the repository root
    old: str  # text that must occur exactly once in that file
    new: str  # what replaces it
    tests: tuple[str, ...]  # pytest arguments: the tests that should catch it


MUTATIONS = (
    Mutation("volume-basis", "Gram-Schmidt skips the projection on the first basis vector",
             "gramviz/gram.py", "        for q in basis:\n", "        for q in basis[1:]:\n",
             ("tests/test_gram.py",)),
    Mutation("tie-rule", "ties with the correct item are counted in the query's favour",
             "gramviz/metrics.py", "above = ((scores >= best[:, None]) & ~relevant)",
             "above = ((scores > best[:, None]) & ~relevant)", ("tests/test_metrics.py",)),
    Mutation("worst-correct-rank", "a query is found at its worst-ranked correct item instead of its best",
             "gramviz/metrics.py", 'best = scores.masked_fill(~relevant, float("-inf")).max(1).values',
             'best = scores.masked_fill(~relevant, float("inf")).min(1).values', ("tests/test_metrics.py",)),
    Mutation("height-logits", "GRAM logits from the height alone instead of the volume",
             "gramviz/losses.py", "scale=lambda base: factor * inv_temperature * base)",
             "scale=lambda base: factor * inv_temperature * torch.ones_like(base))",
             ("tests/test_losses.py", "tests/test_learning.py")),
    Mutation("gradient-ascent", "the training step climbs the loss",
             "gramviz/training/loop.py", 'scaler.scale(terms["loss"]).backward()',
             'scaler.scale(-terms["loss"]).backward()', ("tests/test_learning.py",)),
    Mutation("zero-lr", "the learning-rate schedule returns 0",
             "gramviz/training/setup.py", "    if step < cfg.warmup_steps:\n",
             "    return 0.0\n    if step < cfg.warmup_steps:\n", ("tests/test_learning.py",)),
    Mutation("detached-loss", "the loss is detached from the model before the backward pass",
             "gramviz/training/loop.py", 'scaler.scale(terms["loss"]).backward()',
             'scaler.scale(terms["loss"].detach().requires_grad_()).backward()', ("tests/test_learning.py",)),
    Mutation("dam-labels", "DAM's match / no-match labels inverted",
             "gramviz/models/dam.py", "labels = (anchor_index == candidate_index)",
             "labels = (anchor_index != candidate_index)", ("tests/test_dam.py", "tests/test_learning.py")),
    Mutation("dam-easy-negatives", "DAM's negatives drawn from softmax(+V): the easiest instead of the hardest",
             "gramviz/models/dam.py", "logits = (-v / temperature)", "logits = (v / temperature)",
             ("tests/test_dam.py",)),
    Mutation("search-sign", "a search reads volumes and areas as their negated scores",
             "gramviz/scores.py", "return -scores if self.is_size else scores",
             "return scores if self.is_size else scores", ("tests/test_app.py", "-k", "rank", "tests/test_scores.py")),
    Mutation("search-order", "a search lists the least aligned clips first",
             "gramviz/search.py", "order = torch.sort(masked, descending=True, stable=True)",
             "order = torch.sort(masked, descending=False, stable=True)", ("tests/test_app.py", "-k", "rank")),
    Mutation("zero-rows-present", "a clip whose embedding is a zero row (missing) is ranked like the others",
             "gramviz/evaluation/retrieval.py", "has = emb[m].ne(0).any(1)", "has = emb[m].ne(0).any(1) | True",
             ("tests/test_evaluate.py",)),
    Mutation("batch-collapse-diagonal", "the batch's mean non-matching volume also averages the matching ones",
             "gramviz/training/objective.py", "(volumes.sum() - volumes.diagonal().sum()) / (n * n - n)",
             "volumes.sum() / (n * n)", ("tests/test_train.py", "-k", "batch_collapse")),
)


def _copy_repository(dest: Path) -> None:
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                            capture_output=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def _apply(copy: Path, m: Mutation) -> str | None:
    """Edit the copy; the reason when the mutation no longer applies, else None."""
    path = copy / m.path
    text = path.read_text(encoding="utf-8")
    if text.count(m.old) != 1:
        return f"{m.path} holds the text to replace {text.count(m.old)} times, not once"
    path.write_text(text.replace(m.old, m.new), encoding="utf-8")
    return None


def _run_tests(copy: Path, tests: tuple[str, ...], timeout: int) -> tuple[bool, str]:
    """(whether the tests failed, the last line pytest printed) in the mutated copy."""
    # the copy comes first on every interpreter's path (subprocesses of the tests included)
    env = {**os.environ, "PYTHONPATH": str(copy), "PYTHONDONTWRITEBYTECODE": "1"}
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    try:
        done = subprocess.run(cmd, cwd=copy, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return True, f"timed out after {timeout} s"
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    return done.returncode != 0, lines[-1] if lines else done.stderr.strip()[-200:]


def _check_copy_is_imported(copy: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(copy)}
    found = subprocess.run([sys.executable, "-c", "import gramviz; print(gramviz.__file__)"], cwd=copy, env=env,
                           capture_output=True, text=True, check=True).stdout.strip()
    if not Path(found).resolve().is_relative_to(copy.resolve()):
        raise SystemExit(f"the tests would import {found}, not the mutated copy in {copy}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", help="comma-separated mutation names (default: all)")
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per mutation's test run (default 900)")
    args = parser.parse_args(argv)
    chosen = [m for m in MUTATIONS if not args.only or m.name in args.only.split(",")]
    if args.list or not chosen:
        for m in MUTATIONS:
            print(f"{m.name:<20} {m.what} ({m.path}; {' '.join(m.tests)})")
        return 0 if args.list else 2
    survived = 0
    with tempfile.TemporaryDirectory(prefix="gramviz-mutants-") as tmp:
        copy = Path(tmp) / "repo"
        _copy_repository(copy)
        _check_copy_is_imported(copy)
        for tests in dict.fromkeys(m.tests for m in chosen):  # a failure must come from the bug alone
            failed, last = _run_tests(copy, tests, args.timeout)
            if failed:
                print(f"the unmutated tree already fails {' '.join(tests)}: {last}", file=sys.stderr)
                return 2
        print("| mutation | bug | tests | result | seconds |\n|---|---|---|---|---|", flush=True)
        for m in chosen:
            original = (copy / m.path).read_text(encoding="utf-8")
            start = time.perf_counter()
            problem = _apply(copy, m)
            killed, last = (False, problem) if problem else _run_tests(copy, m.tests, args.timeout)
            (copy / m.path).write_text(original, encoding="utf-8")
            survived += not killed
            verdict = "killed" if killed else ("NOT APPLIED: " if problem else "SURVIVED: ") + last
            print(f"| {m.name} | {m.what} | {' '.join(m.tests)} | {verdict} | {time.perf_counter() - start:.0f} |",
                  flush=True)
    print(f"\n{len(chosen) - survived} of {len(chosen)} deliberate bugs caught")
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
