"""The one place where gramviz talks to torch.distributed: opening and closing the process group
under ``torchrun``, gathering a batch from all ranks, averaging over ranks, and waiting for them.

Outside a process group every function is the one-process identity (rank 0 of 1).
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import Tensor

__all__ = ["barrier", "gather_with_grad", "is_distributed", "mean_over_ranks", "rank", "setup", "shutdown", "world_size"]


def is_distributed() -> bool:
    """True inside an initialised process group with more than one rank."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank (0 outside a process group)."""
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """Number of ranks (1 outside a process group)."""
    return dist.get_world_size() if is_distributed() else 1


def setup(device_name: str = "auto") -> tuple[int, int, torch.device, bool]:
    """Pick this process's device and, under ``torchrun`` (WORLD_SIZE > 1), open the process group.

    Args:
        device_name: "auto" (this rank's GPU when CUDA is available, else the CPU), "cpu", "cuda"
            (this rank's GPU under torchrun) or "cuda:N".

    Returns:
        (rank, world size, device, whether this call opened the group: pass it to `shutdown`).
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available() and device_name != "cpu"
    if device_name == "auto":
        device_name = f"cuda:{local_rank}" if cuda else "cpu"
    elif device_name == "cuda" and world > 1:
        device_name = f"cuda:{local_rank}"
    device = torch.device(device_name)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    opened = False
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        opened = True
    rank_ = dist.get_rank() if dist.is_initialized() else 0
    return rank_, (dist.get_world_size() if dist.is_initialized() else 1), device, opened


def shutdown(opened: bool) -> None:
    """Wait for every rank and close the process group, if `setup` opened it."""
    if opened:
        dist.barrier()
        dist.destroy_process_group()


def barrier() -> None:
    """Wait until every rank gets here (nothing to wait for outside a process group)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def mean_over_ranks(values: Tensor) -> Tensor:
    """The element-wise mean of ``values`` over all ranks (one collective); ``values`` itself
    outside a process group."""
    if dist.is_available() and dist.is_initialized():
        values = values.clone()
        dist.all_reduce(values)
        values /= dist.get_world_size()
    return values


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
