"""Scratch tensors reused from call to call: the large (N, M) matrices of the GRAM loss.

A training step allocates a handful of (B, B) matrices and frees them all at its end. On Linux,
glibc hands such large blocks back to the kernel when they are freed, so every step faults their
pages in again (about 20 ms per step at B = 2048 on 2 cores). `scratch` keeps one tensor per name
(per thread) and hands it out again when nothing else holds it any more (its storage's use count
says so), so the same memory serves every step; a tensor still held (a graph kept for a second
backward pass, an output the caller kept) is never reused: a new one is made.
"""

from __future__ import annotations

import threading

import torch
from torch import Tensor

__all__ = ["scratch", "training_scratch"]

_SLOTS = threading.local()


def _only_ours(t: Tensor) -> bool:
    """True when no tensor but the slot's own (and the temporary storage handle) shares ``t``'s memory."""
    try:
        return torch._C._storage_Use_Count(t.untyped_storage()._cdata) <= 2
    except (AttributeError, RuntimeError):  # a torch without the counter: never reuse
        return False


def scratch(name: str, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> Tensor:
    """An uninitialised tensor for the role ``name``: the one of the last call when it has the same
    shape, dtype and device and is free, else a new one (which takes the slot).

    Example:
        >>> a = scratch("doc", (2, 2), torch.float32, torch.device("cpu"))
        >>> b = scratch("doc", (2, 2), torch.float32, torch.device("cpu"))  # a is still held: a new one
        >>> a.data_ptr() == b.data_ptr()
        False
        >>> ptr = b.data_ptr(); del a, b
        >>> scratch("doc", (2, 2), torch.float32, torch.device("cpu")).data_ptr() == ptr
        True
    """
    slots = _SLOTS.__dict__.setdefault("tensors", {})
    old = slots.get(name)
    if (old is not None and tuple(old.shape) == tuple(shape) and old.dtype == dtype and old.device == device
            and _only_ours(old)):
        return old.detach()
    slots[name] = torch.empty(shape, dtype=dtype, device=device)
    # hand out another tensor on the same memory: whoever keeps it (or a view, or autograd's saved
    # copy) raises the storage's use count, and the memory is not handed out again meanwhile
    return slots[name].detach()


def training_scratch(ctx, name: str, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> Tensor | None:
    """`scratch` inside a custom autograd function's forward when a gradient will be taken (a
    training step, repeated with the same shapes), else None (``out=None``: a fresh tensor, so
    that a one-off evaluation of a large matrix keeps no memory afterwards)."""
    return scratch(name, shape, dtype, device) if any(ctx.needs_input_grad) else None
