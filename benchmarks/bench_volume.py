"""Time the GRAM volume matrix + loss, forward and backward, against two yardsticks.

    python benchmarks/bench_volume.py                      # CPU, 2 threads, the default grid
    python benchmarks/bench_volume.py --device cuda        # a CUDA GPU
    python benchmarks/bench_volume.py --sizes 256 --ks 3   # a quick look

Three ways to get the same loss for a batch of B anchors against B candidates of k - 1 vectors:
  det    the determinant formulation: stack the k x k Gram matrix of every (anchor, candidate)
         pair, batched det, sqrt(abs), then the symmetric cross-entropy of F.cross_entropy;
  gramviz  gramviz.GRAMLoss (orthonormal bases per candidate, one product, fused elementwise);
  floor  the k - 1 matrix products anchor @ other^T alone, backward with a dense gradient:
         no method that reads the pairwise dot products can be faster.
Prints a Markdown table (median of --repeats runs, after warm-up) and the machine.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch
import torch.nn.functional as F

import gramviz


def det_based_loss(anchor, *others, temperature=0.07, label_smoothing=0.1):
    """The determinant formulation, written out: (B, B, k, k) Gram matrices and a batched det."""
    vecs = [anchor, *others]
    k = len(vecs)
    n, m = anchor.shape[0], others[0].shape[0]
    gram = anchor.new_empty(n, m, k, k)
    for p in range(k):
        for q in range(p, k):
            if p == 0 and q == 0:
                block = (anchor * anchor).sum(-1)[:, None].expand(n, m)
            elif p == 0:
                block = anchor @ vecs[q].T
            else:
                block = (vecs[p] * vecs[q]).sum(-1)[None, :].expand(n, m)
            gram[:, :, p, q] = block
            gram[:, :, q, p] = block
    vol = torch.linalg.det(gram).abs().sqrt()
    logits = -vol / temperature
    targets = torch.arange(n, device=anchor.device)
    return (
        F.cross_entropy(logits, targets, label_smoothing=label_smoothing)
        + F.cross_entropy(logits.T, targets, label_smoothing=label_smoothing)
    ) / 2


def floor(anchor, *others, grads):
    """The k - 1 dot-product matrices and their backward pass, nothing else."""
    outs = [anchor @ o.T for o in others]
    torch.autograd.backward(outs, grads)


def _timer(device):
    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    def run(fn, repeats):
        for _ in range(2):
            fn()
        sync()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            sync()
            times.append(time.perf_counter() - start)
        return statistics.median(times) * 1e3

    return run


def bench(b: int, k: int, d: int, device: torch.device, repeats: int, skip_det: bool) -> dict[str, float]:
    g = torch.Generator(device="cpu").manual_seed(b * 10 + k)
    inputs = [F.normalize(torch.randn(b, d, generator=g), dim=-1).to(device).requires_grad_() for _ in range(k)]
    run = _timer(device)
    loss = gramviz.GRAMLoss().to(device)

    def ours():
        loss(*inputs).backward()

    def det():
        det_based_loss(*inputs).backward()

    grads = [torch.randn(b, b, device=device) for _ in range(k - 1)]
    row = {"gramviz": run(ours, repeats), "floor": run(lambda: floor(*inputs, grads=grads), repeats)}
    row["det"] = float("nan") if skip_det else run(det, max(3, repeats // 3))
    return row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (torch.set_num_threads)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 1024, 2048])
    parser.add_argument("--ks", type=int, nargs="+", default=[3, 4])
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--skip-det-above", type=int, default=1 << 30, help="skip the det baseline for larger B")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda":
        machine = torch.cuda.get_device_name(device)
    else:
        machine = f"{platform.processor() or platform.machine()}, {args.threads} threads"
    print(f"gramviz {gramviz.__version__}, torch {torch.__version__}, {machine}, float32, D = {args.dim}\n")
    print("| B | k | det (ms) | gramviz (ms) | floor (ms) | det / gramviz | gramviz / floor |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for k in args.ks:
        for b in args.sizes:
            r = bench(b, k, args.dim, device, args.repeats, skip_det=b > args.skip_det_above)
            print(
                f"| {b} | {k} | {r['det']:.1f} | {r['gramviz']:.1f} | {r['floor']:.1f} "
                f"| {r['det'] / r['gramviz']:.1f}x | {r['gramviz'] / r['floor']:.2f}x |",
                flush=True,
            )


if __name__ == "__main__":
    main()
