"""One training step of a tiny GRAM model under DistributedDataParallel (gloo, CPU).

Run by test_distributed.py as ``torchrun --standalone --nproc_per_node=2 ddp_worker.py OUT_DIR``;
each rank writes its loss and parameter gradients to OUT_DIR/rank<R>.safetensors. The test
builds the same model and global batch in one process and compares.
"""

from __future__ import annotations

import sys

import torch
import torch.nn.functional as F
from torch import nn

from gramviz.losses import LOSSES
from gramviz.modalities import MODALITIES

GLOBAL_BATCH, IN_DIM, EMBED_DIM = 8, 6, 4


class TinyModel(nn.Module):
    """A linear encoder per modality and the loss (with its learnable temperature)."""

    def __init__(self, loss: str) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.encoders = nn.ModuleDict({m: nn.Linear(IN_DIM, EMBED_DIM) for m in MODALITIES}).double()
        self.loss = LOSSES[loss](temperature=0.1).double()

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        emb = {m: F.normalize(self.encoders[m](batch[m]), dim=-1) for m in MODALITIES}
        return self.loss(emb["text"], emb["video"], emb["audio"])


def global_batch() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return {m: torch.randn(GLOBAL_BATCH, IN_DIM, generator=g, dtype=torch.float64) for m in MODALITIES}


def main(argv: list[str]) -> None:
    import torch.distributed as dist
    from safetensors.torch import save_file
    from torch.nn.parallel import DistributedDataParallel

    out_dir = argv[0]
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    b = GLOBAL_BATCH // world
    local = {m: x[rank * b : (rank + 1) * b] for m, x in global_batch().items()}
    result = {}
    for name in LOSSES:
        model = TinyModel(name)
        ddp = DistributedDataParallel(model)  # keep a reference: its hooks average the gradients
        loss = ddp(local)
        loss.backward()
        result[f"{name}/loss"] = loss.detach().reshape(1)
        result.update({f"{name}/grad/{n}": p.grad.contiguous() for n, p in model.named_parameters()})
    save_file(result, f"{out_dir}/rank{rank}.safetensors")
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1:])
