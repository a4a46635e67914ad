"""`ClipIndex`: an exact index of a gallery's clips that a text query searches at about the cost
of a cosine search.

GRAM's volume of a query t with clip j's vectors o_1..o_{k-1} factors as base x height: the
volume of the clip's own parallelotope times the distance of t from its span. Both depend on the
clip alone except through the dot products u_p = t . o_p. So the index keeps, per clip, the
Cholesky factor L of the clip's (k-1) x (k-1) Gram matrix (stored as L^-1, O(k^2) numbers) and
the norms, and the candidates themselves interleaved in one (N, k-1, D) matrix (a copy: drop your
own to save memory); a query then costs one matrix-vector product with that matrix, the k - 1
dot products u_p = t . o_p of every clip in one pass over memory, plus O(k^2) elementwise work
per clip:

    c = L^-1 u   (t's coordinates in an orthonormal basis of the clip's span)
    height^2 = |t|^2 - |c|^2,   volume = base * height,   base = prod diag(L)

The cosine measures follow from the same u_p and the Gram entries; Symile needs one extra matrix
(the element-wise product of the clip's vectors), built on first use. The best candidates of
each chunk of clips are re-scored with the exact elementwise `gramviz.volume` (or the measure's
own formula), so the returned volumes equal `gramviz.volume_matrix`'s to float32 rounding, and
ties keep the lower clip row first, as `gramviz.search.rank_clips` does.

Example:
    >>> import torch.nn.functional as F
    >>> g = torch.Generator().manual_seed(0)
    >>> clips = {m: F.normalize(torch.randn(100, 16, generator=g), dim=-1) for m in ("video", "audio")}
    >>> index = ClipIndex(clips)
    >>> scores, ids = index.search(clips["video"][[7]] + clips["audio"][[7]], k=3)
    >>> ids[0, 0].item()
    7
"""

from __future__ import annotations

import mmap
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor

from ._checks import check_vectors
from .gram import volume
from .modalities import in_stacking_order
from .scores import get_measure, score_matrix

__all__ = ["ClipIndex"]

CHUNK = 262_144  # clips scored at once: bounds the (queries, chunk) intermediates
_POOL = 16  # extra candidates per chunk re-scored exactly: covers near-ties of the approximate scores
_EXACT = ("volume", "triangle")
_HUGE_ABOVE = 64 * 2**20  # bytes of candidates from which they are kept in huge pages  # measures re-scored with their own formula (cancellation-prone)


class ClipIndex:
    """An exact search index over a gallery's candidate embeddings (e.g. video and audio).

    Args:
        candidates: modality -> (N, D) embeddings; row j of each belongs to clip j; any k - 1 >= 1
            modalities (a text anchor makes k). Copied once into the index's interleaved matrix.
        chunk_size: clips scored at once (memory of the intermediates: queries x chunk_size).

    A clip with a zero row in any modality (a missing modality) is never returned by `search`.
    """

    def __init__(self, candidates: Mapping[str, Tensor], chunk_size: int = CHUNK) -> None:
        cand = in_stacking_order(candidates, "candidates")
        if not cand:
            raise ValueError("ClipIndex needs at least one candidate modality, e.g. {'video': (N, D)}")
        check_vectors(list(cand.values()), what="ClipIndex", min_count=1)
        shapes = {m: tuple(x.shape) for m, x in cand.items()}
        if any(len(s) != 2 for s in shapes.values()) or len(set(shapes.values())) != 1:
            raise ValueError(f"ClipIndex: every modality must be an (N, D) matrix of the same shape, got {shapes}")
        if int(chunk_size) != chunk_size or chunk_size < 1:
            raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
        self.modalities = tuple(cand)
        # (N, k-1, D): clip j's vectors side by side, so that one pass over memory reads them all
        n, dim = next(iter(shapes.values()))
        first = next(iter(cand.values()))
        self._stacked, self._buffer = _empty_streamed((n, len(cand), dim), first.dtype, first.device)
        torch.stack([x.detach() for x in cand.values()], dim=1, out=self._stacked)
        self.embeddings = list(self._stacked.unbind(1))  # (N, D) views, one per modality
        self.n, self.dim = self.embeddings[0].shape
        self.chunk_size = int(chunk_size)
        self._symile: Tensor | None = None
        self._build()

    # ------------------------------------------------------------------ per-clip constants

    def _build(self) -> None:
        """Norms, base, inverse Cholesky factor and fused-vector length of every clip, from its Gram
        entries in float64; a query reads only the per-clip rows kept in ``_inv`` and friends."""
        r = len(self.embeddings)  # k - 1
        device = self._stacked.device
        gram = torch.empty(self.n, r, r, dtype=torch.float64, device=device)
        for start in range(0, self.n, self.chunk_size):
            rows = [x[start : start + self.chunk_size].double() for x in self.embeddings]
            for p in range(r):
                for q in range(p, r):
                    gram[start : start + len(rows[0]), p, q] = gram[start : start + len(rows[0]), q, p] = (
                        rows[p] * rows[q]).sum(-1)
        self.norms = gram.diagonal(dim1=1, dim2=2).sqrt()  # (N, r)
        self.present = (self.norms > 0).all(1)  # (N,) no missing modality
        # Cholesky by hand (r is tiny): robust to singular clips, whose zero pivots give zero rows of L^-1
        chol = torch.zeros_like(gram)
        for p in range(r):
            for q in range(p + 1):
                s = gram[:, p, q] - (chol[:, p, :q] * chol[:, q, :q]).sum(-1)
                if p == q:
                    chol[:, p, p] = s.clamp(min=0).sqrt()
                else:
                    pivot = chol[:, q, q]
                    chol[:, p, q] = torch.where(pivot > 0, s / pivot.clamp(min=1e-300), torch.zeros_like(s))
        self.base = chol.diagonal(dim1=1, dim2=2).prod(-1)  # (N,) volume of each clip's own vectors
        eye = torch.eye(r, dtype=torch.float64, device=device).expand(self.n, r, r)
        safe = chol + torch.diag_embed((chol.diagonal(dim1=1, dim2=2) == 0).double())
        inv = torch.linalg.solve_triangular(safe, eye, upper=False)
        inv = inv * (chol.diagonal(dim1=1, dim2=2) > 0).double()[:, :, None]  # (N, r, r) L^-1
        # what a query reads, in the embeddings' dtype: L^-1 entry (p, q) as one (N,) row each, minus the base
        work = self.embeddings[0].dtype
        self._inv = {(p, q): inv[:, p, q].to(work).contiguous() for p in range(r) for q in range(p + 1)}
        self._neg_base = (-self.base).to(work)
        # cosine_fused: |f| of f = mean_p o_p / |o_p|, from the Gram entries
        outer = self.norms[:, :, None] * self.norms[:, None, :]
        fused_sq = torch.where(outer > 0, gram / outer.clamp(min=1e-300), torch.zeros_like(outer))
        self._fused_norm = (fused_sq.sum((-1, -2)).sqrt() / r).to(work)  # (N,)
        self._complete = bool(self.present.all())

    # ------------------------------------------------------------------ scores

    def _compute_dtype(self, queries: Tensor) -> torch.dtype:
        return torch.promote_types(queries.dtype, self.embeddings[0].dtype)

    def _chunk_scores(self, queries: Tensor, rows: slice, measure: str) -> Tensor:
        """(Q, n) scores of the queries against the clips in ``rows`` (score_matrix convention)."""
        if measure == "symile":
            return queries @ self._symile_matrix()[rows].to(queries.dtype).T
        if measure == "triangle":
            return score_matrix(queries, *(x[rows].to(queries.dtype) for x in self.embeddings), measure=measure)
        block = self._stacked[rows]  # (n, r, D)
        u = (queries @ block.reshape(-1, self.dim).to(queries.dtype).T).view(len(queries), -1, len(self.embeddings))
        u = u.unbind(-1)  # r x (Q, n): t . o_p
        t_sq = (queries * queries).sum(-1, keepdim=True)  # (Q, 1)
        if measure == "volume":
            return self._volume_scores(queries, rows, u, t_sq)
        norms = self.norms[rows].T.to(queries.dtype)  # (r, n)
        unit = [torch.where(n > 0, up / n.clamp(min=1e-30), torch.zeros_like(up)) for up, n in zip(u, norms)]
        along = sum(unit) / len(unit)  # mean_p t . o_p / |o_p|
        t_norm = t_sq.sqrt().clamp(min=1e-30)
        if measure == "cosine_pairwise":
            return along / t_norm
        fused_norm = self._fused_norm[rows].to(queries.dtype)  # (n,): |mean_p o_p / |o_p||
        return along / (t_norm * fused_norm.clamp(min=1e-30))

    def _volume_scores(self, queries: Tensor, rows: slice, u: list[Tensor], t_sq: Tensor) -> Tensor:
        """-base * height, height^2 = |t|^2 - |L^-1 u|^2, in a few elementwise passes over (Q, n)."""
        height_sq = None
        for p in range(len(u)):
            c = u[0] * self._inv[p, 0][rows]  # t's p-th coordinate in an orthonormal basis of the span
            for q in range(1, p + 1):
                c.addcmul_(u[q], self._inv[p, q][rows])
            height_sq = torch.addcmul(t_sq, c, c, value=-1) if height_sq is None else height_sq.addcmul_(c, c, value=-1)
        near = height_sq < 0.01 * t_sq  # height < 0.1 |t|: the query lies close to the clip's span
        scores = height_sq.clamp_(min=0).sqrt_().mul_(self._neg_base[rows])
        return self._refine_small_heights(queries, rows, near, scores)

    def _refine_small_heights(self, queries: Tensor, rows: slice, near: Tensor, scores: Tensor) -> Tensor:
        """Scores of the pairs whose query lies close to the clip's span, recomputed exactly.

        |t|^2 - |c|^2 cancels there: float32 products lose the small height's digits, so these
        few pairs (a query's matches, typically) are scored by the elementwise `gramviz.volume`.
        """
        if queries.dtype == torch.float64 or not bool(near.any()):
            return scores
        qi, ci = near.nonzero(as_tuple=True)
        others = [x[rows][ci].to(queries.dtype) for x in self.embeddings]
        scores[qi, ci] = -volume(queries[qi], *others)
        return scores

    def _symile_matrix(self) -> Tensor:
        if self._symile is None:  # one extra (N, D) matrix, only when Symile is asked for
            product = self.embeddings[0].clone()
            for x in self.embeddings[1:]:
                product.mul_(x)
            self._symile = product
        return self._symile

    def _check_queries(self, queries: Tensor, measure: str) -> Tensor:
        get_measure(measure)
        if not isinstance(queries, Tensor) or queries.dim() not in (1, 2) or queries.shape[-1] != self.dim:
            shape = tuple(queries.shape) if isinstance(queries, Tensor) else type(queries).__name__
            raise ValueError(f"ClipIndex: queries must have shape (Q, {self.dim}) or ({self.dim},), got {shape}")
        check_vectors([queries], what="ClipIndex queries")
        return queries.reshape(-1, self.dim).detach().to(self._compute_dtype(queries))

    def scores(self, queries: Tensor, measure: str = "volume") -> Tensor:
        """(Q, N) scores of every query against every clip, as `gramviz.score_matrix` gives them
        (higher = more aligned; for "volume", minus the volume), computed from the index.

        Args:
            queries: (Q, D) or (D,) anchors (e.g. text embeddings).
            measure: one of `gramviz.MEASURES`.
        """
        q = self._check_queries(queries, measure)
        parts = [self._chunk_scores(q, slice(s, s + self.chunk_size), measure) for s in range(0, self.n, self.chunk_size)]
        return torch.cat(parts, dim=1)

    # ------------------------------------------------------------------ search

    def search(self, queries: Tensor, k: int = 10, measure: str = "volume") -> tuple[Tensor, Tensor]:
        """The ``k`` best clips of each query, best first; clips missing a modality are left out.

        Args:
            queries: (Q, D) or (D,) anchors.
            k: results per query (fewer when fewer clips can be ranked).
            measure: one of `gramviz.MEASURES`.

        Returns:
            (scores (Q, k), ids (Q, k) clip rows), scores as `gramviz.score_matrix` gives them:
            higher is better, so volumes (and triangle areas) come back negated. Ties keep the
            lower row first.
        """
        scores, ids, _ = self.rank(queries, k, measure, every=False)
        return scores, ids

    def rank(self, queries: Tensor, k: int = 10, measure: str = "volume",
             every: bool = True) -> tuple[Tensor, Tensor, Tensor | None]:
        """`search`, and with ``every`` also every clip's score from the same pass: (Q, N), clips
        missing a modality at -inf, the returned top k with their exact scores (what a figure of
        the whole ranking needs, at no extra cost)."""
        q = self._check_queries(queries, measure)
        if int(k) != k or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        k = min(int(k), int(self.present.sum()))
        if k == 0:
            raise ValueError(f"no clip can be ranked: every one lacks one of {', '.join(self.modalities)}")
        pool_scores, pool_ids, chunks = [], [], []
        for start in range(0, self.n, self.chunk_size):
            rows = slice(start, min(start + self.chunk_size, self.n))
            s = self._chunk_scores(q, rows, measure)
            if not self._complete:
                s = s.masked_fill(~self.present[rows][None], -torch.inf)
            top = torch.topk(s, min(k + _POOL, s.shape[1]), dim=1)
            pool_scores.append(top.values)
            pool_ids.append(top.indices + start)
            if every:
                chunks.append(s)
        ids = torch.cat(pool_ids, dim=1)  # (Q, P) candidates of every chunk
        scores = torch.cat(pool_scores, dim=1)
        if measure in _EXACT:
            scores = self._exact(q, ids, measure).masked_fill(scores == -torch.inf, -torch.inf)
        scores, ids = _best(scores, ids, k, q.dtype)
        if not every:
            return scores, ids, None
        all_scores = torch.cat(chunks, dim=1)
        return scores, ids, all_scores.scatter_(1, ids, scores)

    def _exact(self, queries: Tensor, ids: Tensor, measure: str) -> Tensor:
        """(Q, P) scores of each query with its pooled clips, from the measure's elementwise formula."""
        others = [x[ids].to(queries.dtype) for x in self.embeddings]  # (Q, P, D) each
        anchor = queries[:, None, :].expand_as(others[0])
        if measure == "volume":
            return -volume(anchor, *others)
        rows = [score_matrix(queries[i : i + 1], *(o[i] for o in others), measure=measure)[0]
                for i in range(len(queries))]
        return torch.stack(rows)

    # ------------------------------------------------------------------ files

    def save(self, path: str | Path) -> Path:
        """Write the index (the embeddings and the per-clip constants) to a safetensors file."""
        from safetensors.torch import save_file

        path = Path(path)
        tensors = {f"embeddings/{m}": x.contiguous() for m, x in zip(self.modalities, self.embeddings)}
        save_file(tensors, str(path), metadata={"format": "gramviz.clip-index", "version": "1",
                                                 "modalities": ",".join(self.modalities),
                                                 "chunk_size": str(self.chunk_size)})
        return path

    @classmethod
    def load(cls, path: str | Path) -> ClipIndex:
        """An index saved by `save`; a ValueError naming the file when it is not one."""
        from safetensors import SafetensorError, safe_open

        path = Path(path)
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
                if meta.get("format") != "gramviz.clip-index":
                    raise ValueError(f"{path}: not a gramviz clip index (format {meta.get('format')!r})")
                embeddings = {m: f.get_tensor(f"embeddings/{m}") for m in meta["modalities"].split(",")}
        except (OSError, SafetensorError) as e:
            raise ValueError(f"{path}: cannot read this clip index ({e})") from None
        return cls(embeddings, chunk_size=int(meta.get("chunk_size", CHUNK)))

    def __repr__(self) -> str:
        return f"ClipIndex({self.n} clips, D={self.dim}, modalities={self.modalities})"


def _empty_streamed(shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> tuple[Tensor, object | None]:
    """An empty CPU tensor for a large matrix that every query reads from end to end: on Linux in
    transparent huge pages (fewer TLB misses while streaming it), else an ordinary tensor.

    Returns the tensor and the buffer that must outlive it (None for an ordinary tensor).
    """
    nbytes = torch.Size(shape).numel() * torch.empty((), dtype=dtype).element_size()
    if device.type != "cpu" or nbytes < _HUGE_ABOVE or not hasattr(mmap, "MADV_HUGEPAGE"):
        return torch.empty(shape, dtype=dtype, device=device), None
    buffer = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    buffer.madvise(mmap.MADV_HUGEPAGE)
    return torch.frombuffer(buffer, dtype=dtype).view(shape), buffer


def _best(scores: Tensor, ids: Tensor, k: int, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """The k best of each row of a candidate pool, ties broken by the lower clip row."""
    by_id = torch.argsort(ids, dim=1)
    scores, ids = scores.gather(1, by_id), ids.gather(1, by_id)
    order = torch.sort(scores, dim=1, descending=True, stable=True).indices[:, :k]
    return scores.gather(1, order).to(dtype), ids.gather(1, order)

