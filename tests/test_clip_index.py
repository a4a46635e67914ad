"""gramviz.search.ClipIndex against a float64 brute force: every measure, k = 2, 3, 4, ties, clips
missing a modality, chunk boundaries, and a save/load round trip."""

import pytest
import torch
import torch.nn.functional as F

import gramviz
import reference as ref
from gramviz.search import ClipIndex


def unit(*shape, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(*shape, generator=g, dtype=torch.float64), dim=-1).to(dtype)


def brute_top(anchor, others, k, measure, missing=()):
    """Top k of a float64 brute force: determinants for the volume, score_matrix in float64 else."""
    a64, o64 = anchor.double(), [o.double() for o in others]
    if measure == "volume":
        scores = -torch.from_numpy(ref.volume_matrix(a64, *o64))
    else:
        scores = gramviz.score_matrix(a64, *o64, measure=measure)
    scores[:, list(missing)] = -torch.inf
    order = torch.sort(scores, dim=1, descending=True, stable=True)  # ties: the lower row first
    return order.values[:, :k], order.indices[:, :k]


@pytest.mark.parametrize("k_modalities", [2, 3, 4])
@pytest.mark.parametrize("measure", gramviz.MEASURES)
def test_search_equals_the_brute_force(k_modalities, measure):
    others = [unit(300, 24, seed=s) for s in range(1, k_modalities)]
    queries = unit(6, 24, seed=10)
    queries[0] = F.normalize(others[0][42] + (others[-1][42] if k_modalities > 2 else 0) + 1e-3 * queries[0], dim=0)
    names = ["video", "audio", "depth"][: k_modalities - 1]
    index = ClipIndex(dict(zip(names, others)), chunk_size=64)  # several chunks and a ragged last one
    scores, ids = index.search(queries, k=7, measure=measure)
    want_scores, want_ids = brute_top(queries, others, 7, measure)
    assert torch.equal(ids, want_ids)
    torch.testing.assert_close(scores, want_scores, rtol=0, atol=1e-10)
    torch.testing.assert_close(index.scores(queries, measure), gramviz.score_matrix(queries, *others, measure=measure),
                               rtol=0, atol=1e-10)
    if measure == "volume":
        assert ids[0, 0] == 42 and -scores[0, 0] < 1e-2  # the near-coplanar clip comes first


@pytest.mark.parametrize("measure", gramviz.MEASURES)
def test_float32_gives_the_volume_matrix_top_k_and_values(measure):
    v, a = unit(2000, 64, seed=1, dtype=torch.float32), unit(2000, 64, seed=2, dtype=torch.float32)
    q = unit(5, 64, seed=3, dtype=torch.float32)
    q[1] = F.normalize(v[7] + a[7] + 1e-3 * q[1], dim=0)  # a tiny height: float32 cancels there
    scores, ids = ClipIndex({"video": v, "audio": a}, chunk_size=500).search(q, k=10, measure=measure)
    want_scores, want_ids = brute_top(q, [v, a], 10, measure)
    assert torch.equal(ids, want_ids) and scores.dtype == torch.float32
    assert float((scores.double() - want_scores).abs().max()) < 1e-5
    if measure == "volume":  # and the same values as the library's own volume matrix
        vm = gramviz.volume_matrix(q, v, a)
        assert float((scores + vm.gather(1, ids)).abs().max()) < 1e-6


def test_ties_keep_the_lower_row_first_and_missing_clips_are_left_out():
    v, a = unit(40, 8, seed=4), unit(40, 8, seed=5)
    v[[3, 11, 30]], a[[3, 11, 30]] = v[20].clone(), a[20].clone()  # four identical clips
    a[25] = 0  # clip 25 has no audio: its zero volume must not rank it
    q = F.normalize(v[20] + a[20] + 0.05 * unit(8, seed=6), dim=0)
    index = ClipIndex({"video": v, "audio": a}, chunk_size=16)  # the tied rows fall in different chunks
    scores, ids = index.search(q, k=6)
    assert ids[0, :4].tolist() == [3, 11, 20, 30] and 25 not in ids[0].tolist()
    assert len(set(scores[0, :4].tolist())) == 1
    want_scores, want_ids = brute_top(q[None], [v, a], 6, "volume", missing=[25])
    assert torch.equal(ids, want_ids)
    assert not bool(index.present[25]) and int(index.present.sum()) == 39
    _, all_ids = index.search(q, k=100)
    assert all_ids.shape == (1, 39)  # every clip that can be ranked, no more


def test_save_and_load_give_the_same_results(tmp_path):
    v, a = unit(100, 16, seed=7, dtype=torch.float32), unit(100, 16, seed=8, dtype=torch.float32)
    index = ClipIndex({"video": v, "audio": a}, chunk_size=32)
    q = unit(3, 16, seed=9, dtype=torch.float32)
    loaded = ClipIndex.load(index.save(tmp_path / "index.safetensors"))
    assert loaded.modalities == ("video", "audio") and loaded.chunk_size == 32
    for measure in gramviz.MEASURES:
        for got, want in zip(loaded.search(q, 5, measure), index.search(q, 5, measure)):
            assert torch.equal(got, want)
    (tmp_path / "bad.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="bad.safetensors: cannot read this clip index"):
        ClipIndex.load(tmp_path / "bad.safetensors")


def test_bad_input_is_explained():
    v = unit(10, 8, seed=1)
    with pytest.raises(ValueError, match="same shape"):
        ClipIndex({"video": v, "audio": unit(9, 8, seed=2)})
    with pytest.raises(ValueError, match="at least one candidate modality"):
        ClipIndex({})
    index = ClipIndex({"video": v, "audio": unit(10, 8, seed=2)})
    with pytest.raises(ValueError, match=r"queries must have shape \(Q, 8\)"):
        index.search(unit(2, 5, seed=3))
    with pytest.raises(ValueError, match="unknown measure"):
        index.search(unit(8, seed=3), measure="cosine")
    with pytest.raises(ValueError, match="NaN"):
        index.search(torch.full((8,), float("nan"), dtype=torch.float64))
    with pytest.raises(ValueError, match="every one lacks"):
        ClipIndex({"video": v, "audio": torch.zeros(10, 8, dtype=torch.float64)}).search(unit(8, seed=3))


@pytest.mark.parametrize("measure", gramviz.MEASURES)
def test_rank_clips_through_an_index_equals_rank_clips_over_the_embeddings(measure):
    from gramviz.search import rank_clips

    v, a = unit(50, 12, seed=11), unit(50, 12, seed=12)
    a[9] = 0  # a clip without audio is left out either way
    q = unit(12, seed=13)
    direct = rank_clips(q, {"video": v, "audio": a}, k=8, measure=measure)
    indexed = rank_clips(q, ClipIndex({"video": v, "audio": a}), k=8, measure=measure)
    assert torch.equal(indexed.indices, direct.indices) and torch.equal(indexed.considered, direct.considered)
    torch.testing.assert_close(indexed.values, direct.values, rtol=0, atol=1e-10)
    torch.testing.assert_close(indexed.all_scores, direct.all_scores, rtol=0, atol=1e-10)
