"""The one place where gramviz talks to torch.distributed: gathering a batch from all ranks."""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor

__all__ = ["is_distributed", "rank", "world_size", "gather_with_grad"]


def is_distributed() -> bool:
    """True inside an initialised process group with more than one rank."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank (0 outside a process group)."""
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """Number of ranks (1 outside a process group)."""
    return dist.get_world_size() if is_distributed() else 1


_gather_group: tuple[object, object] | None = None  # (world group it belongs to, its own group)


def _feature_group():
    """A process group of all ranks used only for gathering features.

    The backward pass of the gather runs collectives while DDP all-reduces gradient buckets
    asynchronously on the default group; a group of their own keeps the two streams of
    collectives independent, whatever order they are issued in.
    """
    global _gather_group
    world = dist.group.WORLD
    if _gather_group is None or _gather_group[0] is not world:
        _gather_group = (world, dist.new_group(ranks=list(range(dist.get_world_size()))))
    return _gather_group[1]


def gather_with_grad(x: Tensor) -> tuple[Tensor, int]:
    """Concatenate ``x`` (B, ...) from every rank, keeping gradients to every rank's input.

    Returns:
        (gathered (world_size * B, ...), offset of this rank's rows in it). Outside a process
        group: (x, 0). The backward pass sums each rank's gradient into the rows it owns, so with
        DDP's gradient averaging the update equals that of one process on the whole batch.
    """
    if not is_distributed():
        return x, 0
    from torch.distributed.nn.functional import all_gather

    group = _feature_group()
    sizes = [torch.zeros(1, dtype=torch.long, device=x.device) for _ in range(world_size())]
    dist.all_gather(sizes, torch.tensor([x.shape[0]], device=x.device), group=group)
    if len({int(s) for s in sizes}) > 1:
        raise ValueError(
            f"gather_with_grad: every rank needs the same batch size, got {[int(s) for s in sizes]} "
            "(use drop_last=True in the DataLoader / DistributedSampler)"
        )
    return torch.cat(all_gather(x, group=group)), rank() * x.shape[0]
