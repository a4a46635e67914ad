"""The volume core against float64 brute force, identities, gradients and bad input."""

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import gramviz
import reference as ref


def unit(*shape, dtype=torch.float64):
    return F.normalize(torch.randn(*shape, dtype=torch.float64), dim=-1).to(dtype)


# ---------------------------------------------------------------- agreement with brute force


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("batch", [(), (6,), (2, 3)])
@pytest.mark.parametrize("d", [5, 64])
def test_volume_float64_matches_determinant(k, batch, d):
    # lengths between 0.5 and 2: the volume is taken as given, not normalised
    vectors = [torch.randn(*batch, d, dtype=torch.float64) * (0.5 + 1.5 * torch.rand(*batch, 1)) for _ in range(k)]
    got = gramviz.volume(*vectors)
    assert got.shape == batch and got.dtype == torch.float64
    flat = [v.reshape(-1, d) for v in vectors]
    want = np.array([ref.volume_det(*(v[n] for v in flat)) for n in range(flat[0].shape[0])]).reshape(batch)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-9, atol=0)


def test_volume_broadcasts_batch_axes():
    a, b, c = torch.randn(4, 1, 8, dtype=torch.float64), torch.randn(1, 3, 8, dtype=torch.float64), torch.randn(8, dtype=torch.float64)
    got = gramviz.volume(a, b, c)
    assert got.shape == (4, 3)
    assert got[2, 1].item() == pytest.approx(ref.volume_det(a[2, 0], b[0, 1], c), rel=1e-12)


@pytest.mark.parametrize("k", [2, 3, 4, 5])
@pytest.mark.parametrize("n,m,d", [(7, 5, 8), (3, 9, 64)])
def test_volume_matrix_float64_matches_brute_force(k, n, m, d):
    anchor = torch.randn(n, d, dtype=torch.float64)
    others = [torch.randn(m, d, dtype=torch.float64) for _ in range(k - 1)]
    got = gramviz.volume_matrix(anchor, *others)
    assert got.shape == (n, m)
    np.testing.assert_allclose(got.numpy(), ref.volume_matrix(anchor, *others), rtol=1e-9, atol=0)


@pytest.mark.parametrize("k", [2, 3, 4, 5])
@pytest.mark.parametrize("d", [16, 512, 1024])
def test_float32_unit_vectors_within_2e_4_of_float64(k, d):
    anchor, others = unit(40, d, dtype=torch.float32), [unit(30, d, dtype=torch.float32) for _ in range(k - 1)]
    got = gramviz.volume_matrix(anchor, *others).double().numpy()
    want = ref.volume_matrix(anchor, *others)  # float64 math on the float32 inputs
    assert np.abs(got - want).max() < 2e-4
    rows = gramviz.volume(anchor[:30], *others).double().numpy()
    assert np.abs(rows - np.diag(want[:30, :30])).max() < 2e-4


@pytest.mark.parametrize("k", [2, 3, 4])
@pytest.mark.parametrize("d", [16, 512, 1024])
@pytest.mark.parametrize("spread", [0.0, 1e-7, 1e-5, 1e-3, 1e-2, 1e-1])
def test_float32_nearly_degenerate_stays_accurate(k, d, spread):
    """Anchors close to the span of their candidate: the regime where det-based code breaks."""
    others = [unit(12, d) for _ in range(k - 1)]
    mix = torch.randn(12, k - 1, 1, dtype=torch.float64)
    in_span = sum(mix[:, p] * others[p] for p in range(k - 1))
    anchor = F.normalize(in_span + spread * torch.randn(12, d, dtype=torch.float64), dim=-1)
    a32, o32 = anchor.float(), [o.float() for o in others]
    want = ref.volume_matrix(a32, *o32, volume=ref.volume_qr)
    got = gramviz.volume_matrix(a32, *o32).double().numpy()
    assert (got >= 0).all()
    assert np.abs(got - want).max() < 2e-4
    # the diagonal (the nearly degenerate tuples) is in fact far more accurate than that
    assert np.abs(np.diag(got) - np.diag(want)).max() < 1e-5
    tuples = gramviz.volume(a32, *o32).double().numpy()
    assert np.abs(tuples - np.diag(want)).max() < 1e-5


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_inputs_are_computed_in_float32(dtype):
    anchor, others = unit(10, 64, dtype=dtype), [unit(8, 64, dtype=dtype) for _ in range(2)]
    got = gramviz.volume_matrix(anchor, *others)
    assert got.dtype == torch.float32
    np.testing.assert_allclose(got.numpy(), ref.volume_matrix(anchor, *others), atol=1e-5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert gramviz.volume_matrix(anchor.float(), *(o.float() for o in others)).dtype == torch.float32


def test_gram_matrix_entries_are_dot_products():
    vs = [torch.randn(3, 7, dtype=torch.float64) for _ in range(4)]
    g = gramviz.gram_matrix(*vs)
    assert g.shape == (3, 4, 4)
    for i, j in itertools.product(range(4), range(4)):
        np.testing.assert_allclose(g[:, i, j].numpy(), (vs[i] * vs[j]).sum(-1).numpy(), rtol=1e-12)
    vol_from_det = torch.linalg.det(g).sqrt()
    np.testing.assert_allclose(gramviz.volume(*vs).numpy(), vol_from_det.numpy(), rtol=1e-9)


# ---------------------------------------------------------------- identities


@pytest.mark.parametrize("theta", [0.0, 1e-4, 0.3, math.pi / 2, 2.0, math.pi])
def test_two_vectors_give_length_times_length_times_sin(theta):
    rng = np.random.default_rng(1)
    e = ref.random_orthonormal(50, 2, rng)  # two orthonormal directions in R^50
    r1, r2 = 0.7, 3.0
    a = torch.tensor(r1 * e[0])
    b = torch.tensor(r2 * (math.cos(theta) * e[0] + math.sin(theta) * e[1]))
    assert gramviz.volume(a, b).item() == pytest.approx(r1 * r2 * abs(math.sin(theta)), abs=1e-12)
    assert gramviz.volume_matrix(a[None], b[None]).item() == pytest.approx(r1 * r2 * abs(math.sin(theta)), abs=1e-12)


@pytest.mark.parametrize("k", [2, 3, 4, 5])
def test_orthonormal_vectors_have_volume_one(k):
    q = torch.tensor(ref.random_orthonormal(32, k, np.random.default_rng(k)))
    assert gramviz.volume(*q).item() == pytest.approx(1.0, abs=1e-12)
    assert gramviz.volume(*q.float()).item() == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-14), (torch.float32, 1e-6)])
@pytest.mark.parametrize("k", [2, 3, 4])
def test_duplicated_vector_gives_zero(k, dtype, tol):
    vs = [unit(5, 256, dtype=dtype) for _ in range(k - 1)]
    assert gramviz.volume(vs[0], *vs).abs().max().item() < tol
    assert gramviz.volume_matrix(vs[0], *vs).diagonal().max().item() < tol


def test_permutation_invariance():
    vs = [torch.randn(6, 20, dtype=torch.float64) for _ in range(4)]
    want = gramviz.volume(*vs)
    for perm in itertools.permutations(range(4)):
        np.testing.assert_allclose(gramviz.volume(*(vs[p] for p in perm)).numpy(), want.numpy(), rtol=1e-10)


@pytest.mark.parametrize("c", [-3.0, -0.5, 0.0, 2.0])
def test_scaling_one_vector_scales_volume_by_abs_c(c):
    vs = [torch.randn(6, 20, dtype=torch.float64) for _ in range(3)]
    np.testing.assert_allclose(
        gramviz.volume(c * vs[0], vs[1], vs[2]).numpy(), abs(c) * gramviz.volume(*vs).numpy(), rtol=1e-10, atol=1e-15
    )
    np.testing.assert_allclose(
        gramviz.volume_matrix(vs[0], c * vs[1], vs[2]).numpy(),
        abs(c) * gramviz.volume_matrix(*vs).numpy(),
        rtol=1e-10,
        atol=1e-15,
    )


@pytest.mark.parametrize("k", [2, 3, 4])
def test_schur_base_times_height(k):
    t = torch.randn(5, 12, dtype=torch.float64)
    others = [torch.randn(5, 12, dtype=torch.float64) for _ in range(k - 1)]
    base, height = gramviz.base_height(t, *others)
    for n in range(5):
        assert base[n].item() == pytest.approx(ref.volume_det(*(o[n] for o in others)), rel=1e-10)
        assert height[n].item() == pytest.approx(ref.distance_from_span(t[n], *(o[n] for o in others)), rel=1e-10)
    np.testing.assert_allclose((base * height).numpy(), gramviz.volume(t, *others).numpy(), rtol=1e-12)
    # the same for every pair: base of candidate j times height of anchor i over it
    mbase, mheight = gramviz.base_height_matrix(t, *others)
    np.testing.assert_allclose(mbase.numpy(), base.numpy(), rtol=1e-10)
    want_h = [[ref.distance_from_span(t[i], *(o[j] for o in others)) for j in range(5)] for i in range(5)]
    np.testing.assert_allclose(mheight.numpy(), np.array(want_h), rtol=1e-9)
    np.testing.assert_allclose((mbase * mheight).numpy(), gramviz.volume_matrix(t, *others).numpy(), rtol=1e-12)


def test_more_vectors_than_dimensions_is_exactly_zero():
    vs = [torch.randn(4, 3, dtype=torch.float64) for _ in range(4)]
    assert torch.equal(gramviz.volume(*vs), torch.zeros(4, dtype=torch.float64))
    assert torch.equal(gramviz.volume_matrix(vs[0], *vs[1:]), torch.zeros(4, 4, dtype=torch.float64))


def test_unit_triplet_formula_and_random_high_dimension():
    # k = 3 unit vectors: Vol^2 = 1 - a^2 - b^2 - c^2 + 2abc with the pairwise cosines
    t, v, a = unit(3, 100, 8)
    ca, cb, cc = (t * v).sum(-1), (t * a).sum(-1), (v * a).sum(-1)
    formula = (1 - ca**2 - cb**2 - cc**2 + 2 * ca * cb * cc).sqrt()
    np.testing.assert_allclose(gramviz.volume(t, v, a).numpy(), formula.numpy(), rtol=1e-9)
    # unrelated 512-d unit triplets are nearly orthogonal: volumes close to 1
    vol = gramviz.volume(*unit(3, 1000, 512))
    assert vol.min() > 0.95 and vol.max() <= 1.0


# ---------------------------------------------------------------- gradients


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_gradcheck_volume(k):
    vs = [torch.randn(3, 6, dtype=torch.float64, requires_grad=True) for _ in range(k)]
    assert torch.autograd.gradcheck(gramviz.volume, vs)


@pytest.mark.parametrize("k", [2, 3, 4])
def test_gradcheck_volume_matrix(k):
    anchor = torch.randn(4, 6, dtype=torch.float64, requires_grad=True)
    others = [torch.randn(3, 6, dtype=torch.float64, requires_grad=True) for _ in range(k - 1)]
    assert torch.autograd.gradcheck(gramviz.volume_matrix, (anchor, *others))
    assert torch.autograd.gradcheck(lambda *x: gramviz.base_height_matrix(*x)[1], (anchor, *others))


def test_gradcheck_through_the_exact_refinement_of_small_heights():
    # anchors 1e-4 from the plane of their candidate: refined pairs, still exact gradients
    others = [torch.randn(3, 6, dtype=torch.float64) for _ in range(2)]
    anchor = 0.3 * others[0] - 0.8 * others[1] + 1e-4 * torch.randn(3, 6, dtype=torch.float64)
    inputs = [x.clone().requires_grad_() for x in (anchor, *others)]
    assert torch.autograd.gradcheck(gramviz.volume_matrix, inputs)


def _degenerate_cases(dtype):
    v = unit(4, 16, dtype=dtype)
    a = unit(4, 16, dtype=dtype)
    zero = torch.zeros(4, 16, dtype=dtype)
    return {
        "collinear": (v, -2.5 * v, a),
        "duplicated": (v, v, a),
        "all equal": (v, v, v),
        "anchor in span": ((0.6 * v + 0.8 * a), v, a),
        "zero anchor": (zero, v, a),
        "zero candidate": (v, zero, a),
        "all zero": (zero, zero, zero),
    }


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("case", list(_degenerate_cases(torch.float64)))
def test_gradients_are_finite_at_degenerate_points(case, dtype):
    tensors = [x.clone().requires_grad_() for x in _degenerate_cases(dtype)[case]]
    vol = gramviz.volume(*tensors)
    mat = gramviz.volume_matrix(*tensors)
    loss = gramviz.GRAMLoss()(*tensors)
    torch.autograd.backward([vol.sum(), mat.sum(), loss])
    for x in tensors:
        assert torch.isfinite(x.grad).all()
    # and the forward values are still exact: these tuples have zero volume
    want = np.array([ref.volume_qr(*(x[n] for x in tensors)) for n in range(4)])
    tol = 1e-12 if dtype == torch.float64 else 1e-6
    np.testing.assert_allclose(vol.detach().double().numpy(), want, atol=tol)
    np.testing.assert_allclose(mat.detach().diagonal().double().numpy(), want, atol=tol)


# ---------------------------------------------------------------- bad input


def test_bad_input_raises_clear_errors():
    x = torch.randn(4, 8)
    with pytest.raises(ValueError, match="embedding dimensions differ"):
        gramviz.volume(x, torch.randn(4, 7))
    with pytest.raises(ValueError, match="embedding dimensions differ"):
        gramviz.volume_matrix(x, torch.randn(3, 7))
    with pytest.raises(ValueError, match="NaN or Inf"):
        gramviz.volume(x, torch.full((4, 8), float("nan")))
    with pytest.raises(ValueError, match="NaN or Inf"):
        gramviz.volume_matrix(x, x.clone().fill_(float("inf")))
    with pytest.raises(TypeError, match="floating dtype"):
        gramviz.volume(x, torch.ones(4, 8, dtype=torch.long))
    with pytest.raises(TypeError, match="torch.Tensor"):
        gramviz.volume(x, [1.0] * 8)
    with pytest.raises(ValueError, match="at least one other modality"):
        gramviz.volume_matrix(x)
    with pytest.raises(ValueError, match="at least one vector"):
        gramviz.volume()
    with pytest.raises(ValueError, match="2-D"):
        gramviz.volume_matrix(torch.randn(8), torch.randn(3, 8))
    with pytest.raises(ValueError, match="same number of rows"):
        gramviz.volume_matrix(x, torch.randn(3, 8), torch.randn(2, 8))
    with pytest.raises(ValueError, match="scalar"):
        gramviz.volume(torch.tensor(1.0), torch.tensor(2.0))
