"""Check the GRAM core on a CUDA GPU: accuracy against float64, degenerate inputs, autocast.

    python benchmarks/cuda_check.py

Prints one line per check and exits non-zero if any fails. Without a CUDA device it runs the same
checks on the CPU (autocast then uses the CPU's bfloat16).
"""

from __future__ import annotations

import sys

import torch
import torch.nn.functional as F

import gramviz


def unit(n: int, d: int, device: str = "cpu") -> torch.Tensor:
    return F.normalize(torch.randn(n, d, dtype=torch.float64), dim=-1).to(device)


def main() -> int:
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    failures = 0

    def check(name: str, ok: bool, detail: str) -> None:
        nonlocal failures
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}")

    for k in (2, 3, 4, 5):
        # anchors near the span of their candidate (spread 1e-6) and random pairs, D = 1024
        others = [unit(256, 1024) for _ in range(k - 1)]
        anchor = F.normalize(sum(others) + 1e-6 * torch.randn(256, 1024, dtype=torch.float64), dim=-1)
        a32, o32 = anchor.float(), [o.float() for o in others]
        want = gramviz.volume_matrix(a32.double(), *(o.double() for o in o32))
        got = gramviz.volume_matrix(a32.to(dev), *(o.to(dev) for o in o32)).double().cpu()
        err = (got - want).abs().max().item()
        check(f"float32 volume_matrix k={k}, D=1024 vs float64", err < 2e-4, f"max abs error {err:.2e}")
        g64 = gramviz.volume_matrix(anchor.to(dev), *(o.to(dev) for o in others)).cpu()
        want64 = gramviz.volume_matrix(anchor, *others)
        rel = ((g64 - want64).abs() / want64.clamp_min(1e-3)).max().item()
        check(f"float64 on CUDA equals float64 on CPU, k={k}", rel < 1e-6, f"max rel diff {rel:.1e}")

    v, a = unit(64, 512, dev), unit(64, 512, dev)
    zero = torch.zeros_like(v)
    for name, tensors in {"duplicated": (v, v, a), "collinear": (v, -v, a), "zero": (zero, v, a)}.items():
        xs = [x.float().clone().requires_grad_() for x in tensors]
        loss = gramviz.GRAMLoss().to(dev)(*xs) + gramviz.volume(*xs).sum()
        loss.backward()
        finite = all(torch.isfinite(x.grad).all().item() for x in xs)
        check(f"finite gradients, {name}", finite, f"loss {loss.item():.4f}")

    t, v, a = (unit(512, 512, dev).float().requires_grad_() for _ in range(3))
    with torch.autocast(dev, dtype=torch.bfloat16):
        vm = gramviz.volume_matrix(t, v, a)
        loss = gramviz.GRAMLoss().to(dev)(t, v, a)
    loss.backward()
    check("autocast bf16 keeps float32 volumes", vm.dtype == torch.float32 and torch.isfinite(loss).item(), f"dtype {vm.dtype}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
