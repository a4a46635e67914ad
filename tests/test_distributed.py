"""Multi-process GRAM: the gathered loss under DDP equals one process on the whole batch."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import gramviz
from ddp_worker import LOSSES, TinyModel, global_batch

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def rank_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(HERE / "ddp_worker.py"), str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [load_file(out / f"rank{r}.safetensors") for r in range(2)]


@pytest.mark.parametrize("name", list(LOSSES))
def test_ddp_loss_and_gradients_equal_single_process_on_the_whole_batch(rank_results, name):
    model = TinyModel(name)
    loss = model(global_batch())
    loss.backward()
    # each rank's loss covers its own anchors (rows) and candidates (columns) against the whole
    # gathered batch; their mean is the single-process loss
    mean_loss = sum(r[f"{name}/loss"] for r in rank_results).item() / 2
    assert mean_loss == pytest.approx(loss.item(), rel=1e-12)
    for n, p in model.named_parameters():
        for r in rank_results:  # DDP averaged the gradients: every rank holds the global ones
            torch.testing.assert_close(r[f"{name}/grad/{n}"], p.grad, rtol=1e-10, atol=1e-12)


def test_gather_is_identity_outside_a_process_group():
    x = torch.randn(3, 4)
    gathered, offset = gramviz.distributed.gather_with_grad(x)
    assert gathered is x and offset == 0
    assert gramviz.distributed.world_size() == 1 and gramviz.distributed.rank() == 0
