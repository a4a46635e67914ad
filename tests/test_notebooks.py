"""The teaching notebooks: each runs top to bottom on the CPU without an error, says what it teaches
first and sums up last, explains every figure, prints no object reprs or noisy floats, and is
committed without outputs.

No assertion depends on how fast the machine is: the timeouts below only stop a notebook that hangs,
and ``pytest --durations=0`` reports how long each one took. Deselect the (slow) execution with
``pytest -m "not notebooks"``.
"""

import os
import re
import sys
from pathlib import Path

import nbformat
import pytest

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
HANG_S = 600  # a cell (and, plus a minute, a notebook) still running after this has hung
FIGURE_TYPES = ("application/vnd.plotly.v1+json", "application/vnd.jupyter.widget-view+json")
WHAT_TO_LOOK_AT = "what to look at"
# what a reader should never see: an object's repr, or a float printed with all its noise digits
STRAY = {"an object's repr": re.compile(r"<[\w.]+ (object )?at 0x[0-9a-f]+>"),
         "a long float": re.compile(r"\d\.\d{7,}")}


def test_the_four_lessons_are_there():
    assert [p.name for p in NOTEBOOKS] == ["01_geometry.ipynb", "02_loss_and_training.ipynb",
                                           "03_alignment_analysis.ipynb", "04_retrieval_and_classification.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_without_outputs_and_framed_by_aims_and_summary(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code), f"{path.name}: clear the outputs"
    assert nb.metadata["kernelspec"]["name"] == "python3"
    first, last = nb.cells[0], nb.cells[-1]
    assert first.cell_type == "markdown" and "what this notebook teaches" in first.source.lower()
    assert last.cell_type == "markdown" and last.source.startswith("## Summary")


def _shown_text(output) -> str:
    """The text a reader sees of an output: printed text, plain and Markdown results, HTML without
    its embedded media."""
    if output.output_type == "stream":
        return output.text
    data = output.get("data", {})
    if any(t in data for t in FIGURE_TYPES):  # a figure: its HTML is code and data; the test below reads around it
        return ""
    html = re.sub(r'src="data:[^"]*"', "", data.get("text/html", ""))
    return "\n".join([data.get("text/plain", "") if len(data) == 1 else "", data.get("text/markdown", ""), html])


def _adjacent_markdown(nb, index):
    """The markdown of the nearest markdown cells before and after cell ``index``."""
    before = next((c.source for c in reversed(nb.cells[:index]) if c.cell_type == "markdown"), "")
    after = next((c.source for c in nb.cells[index + 1:] if c.cell_type == "markdown"), "")
    return (before + "\n" + after).lower()


@pytest.mark.notebooks
@pytest.mark.slow
@pytest.mark.timeout(HANG_S + 60)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_runs_top_to_bottom(path):
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    # first, prove which interpreter runs the kernel: this environment's (jupyter_client starts the
    # "python3" kernel with sys.executable of the process that launches it)
    nb.cells.insert(0, nbformat.v4.new_code_cell("import sys; print(sys.executable)"))
    # run in the notebook's folder, as JupyterLab does
    client = NotebookClient(nb, timeout=HANG_S, kernel_name="python3", allow_errors=False,
                            resources={"metadata": {"path": str(path.parent)}})
    # One intra-op thread: the notebooks' models are small, and on a CPU shared with other work
    # (a parallel test run, a training job) PyTorch's spinning threads make training several times
    # slower.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    client.execute(env=env)
    assert nb.cells[0].outputs[0].text.strip() == sys.executable
    nb.cells.pop(0)
    for i, cell in enumerate(nb.cells):
        errors = [o for o in cell.get("outputs", []) if o.output_type == "error"]
        assert not errors, f"{path.name}, cell {i}: {errors[0].ename}: {errors[0].evalue}"
        for output in cell.get("outputs", []):
            for what, pattern in STRAY.items():
                found = pattern.search(_shown_text(output))
                assert not found, f"{path.name}, cell {i} shows {what}: {found.group()!r}"
        figures = [o for o in cell.get("outputs", []) if any(t in o.get("data", {}) for t in FIGURE_TYPES)]
        if figures:
            assert WHAT_TO_LOOK_AT in _adjacent_markdown(nb, i), f"{path.name}, cell {i}: say what to look at"
