"""Score matrices of GRAM and its peer measures against per-pair loops."""

import math

import numpy as np
import pytest
import torch

import gramviz
import reference as ref


def _inputs(k, n=5, m=4, d=6):
    return torch.randn(n, d, dtype=torch.float64), [torch.randn(m, d, dtype=torch.float64) for _ in range(k - 1)]


def _loop(anchor, others, pair_score):
    a = ref.as64(anchor)
    os_ = [ref.as64(o) for o in others]
    return np.array([[pair_score(a[i], [o[j] for o in os_]) for j in range(os_[0].shape[0])] for i in range(a.shape[0])])


def _pairwise(t, os_):
    return np.mean([ref.cosine(t, o) for o in os_])


def _fused(t, os_):
    fused = np.mean([o / np.linalg.norm(o) for o in os_], axis=0)
    return ref.cosine(t, fused)


def _symile(t, os_):
    return float(np.sum(t * np.prod(os_, axis=0)))


def _simplex(t, os_):
    edges = [o - t for o in os_]
    return -ref.volume_det(*edges) / math.factorial(len(os_))


BRUTE = {
    "volume": lambda t, os_: -ref.volume_det(t, *os_),
    "cosine_pairwise": _pairwise,
    "cosine_fused": _fused,
    "symile": _symile,
    "triangle": _simplex,
}


@pytest.mark.parametrize("measure", gramviz.MEASURES)
@pytest.mark.parametrize("k", [2, 3, 4])
def test_score_matrix_matches_per_pair_loop(measure, k):
    anchor, others = _inputs(k)
    got = gramviz.score_matrix(anchor, *others, measure=measure)
    assert got.shape == (5, 4)
    np.testing.assert_allclose(got.numpy(), _loop(anchor, others, BRUTE[measure]), rtol=1e-9, atol=1e-12)


def test_triangle_is_the_triangle_area_for_three_modalities():
    t, v, a = (torch.randn(1, 3, dtype=torch.float64) for _ in range(3))
    area = 0.5 * np.linalg.norm(np.cross(ref.as64(t - v)[0], ref.as64(t - a)[0]))
    assert gramviz.score_matrix(t, v, a, measure="triangle").item() == pytest.approx(-area, rel=1e-12)


def test_higher_score_means_more_aligned_for_every_measure():
    # candidate 0 repeats the anchor in both modalities; candidate 1 is orthogonal to it
    e = torch.eye(4, dtype=torch.float64)
    anchor = (e[0] + 0.1 * e[3])[None]
    video = torch.stack([anchor[0], e[1]])
    audio = torch.stack([anchor[0] + 0.01 * e[2], e[2]])
    for measure in gramviz.MEASURES:
        s = gramviz.score_matrix(anchor, video, audio, measure=measure)
        assert s[0, 0] > s[0, 1], measure


def test_score_matrix_rejects_bad_input():
    x = torch.randn(3, 4)
    with pytest.raises(ValueError, match="unknown measure 'cosine'"):
        gramviz.score_matrix(x, x, measure="cosine")
    with pytest.raises(ValueError, match="at least one other modality"):
        gramviz.score_matrix(x, measure="symile")
    with pytest.raises(ValueError, match="NaN"):
        gramviz.score_matrix(x, x.clone().fill_(float("nan")), measure="cosine_fused")
    with pytest.raises(TypeError, match="floating"):
        gramviz.score_matrix(x, x.long(), measure="cosine_pairwise")


def test_the_measure_registry_reads_sizes_as_sizes():
    from gramviz.scores import get_measure, measure_values

    anchor, others = _inputs(3)
    sizes = {m for m in gramviz.MEASURES if get_measure(m).is_size}
    assert sizes == {"volume", "triangle"}  # the measures whose scores are minus a volume or an area
    vol = ref.volume_matrix(anchor, *others)
    scores = gramviz.score_matrix(anchor, *others, measure="volume")
    np.testing.assert_allclose(measure_values(scores, "volume").numpy(), vol, rtol=1e-9)
    cos = gramviz.score_matrix(anchor, *others, measure="cosine_pairwise")
    assert torch.equal(measure_values(cos, "cosine_pairwise"), cos)
    assert get_measure("volume").axis_title() == "GRAM volume (lower = more aligned)"
    assert get_measure("symile").axis_title() == "Symile (higher = more aligned)"
    with pytest.raises(ValueError, match="unknown measure 'cos'; choose one of volume, cosine_pairwise"):
        get_measure("cos")
