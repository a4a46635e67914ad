"""Gallery search speed: the exact volume index against a cosine search over the same clips.

    python benchmarks/bench_search.py                       # 10k, 100k and 1M clips, D = 256 and 512
    python benchmarks/bench_search.py --sizes 10000 --dims 256 --repeats 5

For each gallery size N and dimension D (random unit vectors for video and audio, one text query):

- ``index``: `gramviz.search.ClipIndex.search(query, k=10)`, the exact GRAM volume top 10;
- ``direct``: `gramviz.search.rank_clips` over the embeddings (Gram-Schmidt of every clip per query),
  for N <= 100k;
- ``cosine``: one matrix-vector product with an (N, D) matrix (a clip's fused vector) plus topk,
  what a user of a cosine model would run;
- ``faiss``: FAISS ``IndexFlatIP`` over the same (N, D) matrix, when faiss-cpu is installed
  (``pip install -e ".[bench]"``);
- ``batch``: 64 queries at once through the index, per query.

The index memory includes its interleaved copy of the video and audio matrices (the embeddings
column): a caller who keeps only the index holds the embeddings once.

Times are medians over ``--repeats`` runs after one warm-up, with ``--threads`` torch (and FAISS)
threads. Build time and the memory the index adds beyond the embeddings go in the same table. A
second table checks the index against a float64 brute force on 2,000 random queries' top 10.
Results print as a Markdown table (benchmarks/README.md keeps the last run).
"""

from __future__ import annotations

import argparse
import gc
import platform
import statistics
import time

import torch
import torch.nn.functional as F

import gramviz
from gramviz.search import ClipIndex, rank_clips


def _median_ms(fn, repeats: int) -> float:
    fn()  # warm-up: page in the matrices, allocate buffers
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def _unit(n: int, d: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    out = torch.empty(n, d)
    for s in range(0, n, 100_000):  # in blocks: bounds the temporary of normalize
        out[s : s + 100_000] = F.normalize(torch.randn(min(100_000, n - s), d, generator=g), dim=-1)
    return out


def _index_bytes(index: ClipIndex) -> int:
    """Memory the index holds: its interleaved copy of the candidates and the per-clip constants."""
    held = [index._stacked, index.norms, index.present, index.base, index._neg_base, index._fused_norm,
            *index._inv.values()]
    return sum(t.numel() * t.element_size() for t in held)


def _faiss_ms(matrix: torch.Tensor, query: torch.Tensor, repeats: int, threads: int) -> float | None:
    try:
        import faiss
    except ImportError:
        return None
    faiss.omp_set_num_threads(threads)
    flat = faiss.IndexFlatIP(matrix.shape[1])
    flat.add(matrix.numpy())
    q = query.numpy()
    return _median_ms(lambda: flat.search(q, 10), repeats)


def run_size(n: int, d: int, repeats: int, threads: int) -> dict[str, float | None]:
    video, audio = _unit(n, d, 1), _unit(n, d, 2)
    fused = F.normalize(video + audio, dim=-1)  # what a cosine search would read: one (N, D) matrix
    # every matrix read below allocated alike (a fresh copy): how a large buffer was first written
    # changes its read speed by up to a third on this machine, which would bias the ratio
    video, audio, fused = video.clone(), audio.clone(), fused.clone()
    query = _unit(1, d, 3)
    start = time.perf_counter()
    index = ClipIndex({"video": video, "audio": audio})
    build_s = time.perf_counter() - start
    row = {
        "index_ms": _median_ms(lambda: index.search(query, k=10), repeats),
        "cosine_ms": _median_ms(lambda: torch.topk(query @ fused.T, 10, dim=1), repeats),
        "direct_ms": (_median_ms(lambda: rank_clips(query[0], {"video": video, "audio": audio}, k=10), max(1, repeats // 3))
                      if n <= 100_000 else None),
        "faiss_ms": _faiss_ms(fused, query, repeats, threads),
        "batch_ms": _median_ms(lambda: index.search(_unit(64, d, 4), k=10), max(1, repeats // 3)) / 64,
        "build_s": build_s,
        "index_mb": _index_bytes(index) / 2**20,
        "embeddings_mb": 2 * n * d * 4 / 2**20,
    }
    return row


def exactness(n: int = 20_000, d: int = 256, queries: int = 2000) -> dict[str, float]:
    """The index's float32 top 10 against `gramviz.volume_matrix` in float32 and in float64."""
    video, audio = _unit(n, d, 5), _unit(n, d, 6)
    q = _unit(queries, d, 7)
    q[:100] = F.normalize(video[:100] + audio[:100] + 0.01 * q[:100], dim=-1)  # near-coplanar matches
    scores, ids = ClipIndex({"video": video, "audio": audio}).search(q, k=10)
    out = {"queries": queries, "same_as_float32": 0, "same_as_float64": 0, "within_rounding": 0, "max_error": 0.0}
    for s in range(0, queries, 100):  # 100 queries at a time
        block, got = slice(s, s + 100), ids[s : s + 100]
        f32 = torch.sort(gramviz.volume_matrix(q[block], video, audio), dim=1, stable=True)
        exact = gramviz.volume_matrix(q[block].double(), video.double(), audio.double())
        f64 = torch.sort(exact, dim=1, stable=True)
        out["same_as_float32"] += int((f32.indices[:, :10] == got).all(1).sum())
        out["same_as_float64"] += int((f64.indices[:, :10] == got).all(1).sum())
        # a swap only among volumes closer than float32 rounding (1e-6) is no error of the index
        out["within_rounding"] += int((exact.gather(1, got) <= f64.values[:, 9:10] + 1e-6).all(1).sum())
        out["max_error"] = max(out["max_error"], float((exact.gather(1, got) + scores[block].double()).abs().max()))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated gallery sizes")
    parser.add_argument("--dims", default="256,512", help="comma-separated embedding dimensions")
    parser.add_argument("--repeats", type=int, default=9, help="timed runs per measurement (median)")
    parser.add_argument("--threads", type=int, default=2, help="torch and FAISS threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, {platform.processor() or platform.machine()}\n")
    print("| clips | D | index (ms) | cosine GEMV + topk (ms) | index / cosine | FAISS IndexFlatIP (ms) "
          "| rank_clips (ms) | 64 queries, per query (ms) | build (s) | index memory (MB) | embeddings (MB) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for d in map(int, args.dims.split(",")):
        for n in map(int, args.sizes.split(",")):
            r = run_size(n, d, args.repeats, args.threads)
            gc.collect()  # the previous size's matrices go before the next are made
            fmt = lambda x, p=1: "-" if x is None else f"{x:,.{p}f}"  # noqa: E731
            print(f"| {n:,} | {d} | {fmt(r['index_ms'])} | {fmt(r['cosine_ms'])} | "
                  f"{r['index_ms'] / r['cosine_ms']:.2f}x | {fmt(r['faiss_ms'])} | {fmt(r['direct_ms'])} | "
                  f"{fmt(r['batch_ms'], 2)} | {fmt(r['build_s'], 2)} | {fmt(r['index_mb'], 0)} | "
                  f"{fmt(r['embeddings_mb'], 0)} |", flush=True)
    e = exactness()
    print(f"\nexactness, 20,000 clips, D = 256, float32, {e['queries']:,} queries: the top 10 (ids and order) equals "
          f"volume_matrix's in float32 for {e['same_as_float32']:,} and in float64 for {e['same_as_float64']:,}; "
          f"for {e['within_rounding']:,} every id returned is within 1e-6 of the float64 top 10; "
          f"largest volume difference from float64: {e['max_error']:.1e}")


if __name__ == "__main__":
    main()
