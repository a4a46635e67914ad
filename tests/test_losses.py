"""Losses against the formula written out by hand, gradients, temperature and bad input."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import gramviz
import reference as ref
from gramviz.losses import smoothed_cross_entropy


def _batch(b=6, d=10, k=3):
    return [F.normalize(torch.randn(b, d, dtype=torch.float64), dim=-1) for _ in range(k)]


def _symmetric(logits, eps):
    targets = list(range(logits.shape[0]))
    return (ref.smoothed_ce_rows(logits, targets, eps) + ref.smoothed_ce_rows(logits.T, targets, eps)) / 2


@pytest.mark.parametrize("k", [2, 3, 4])
@pytest.mark.parametrize("tau,eps", [(0.07, 0.1), (0.5, 0.0)])
def test_gram_loss_equals_hand_written_formula(k, tau, eps):
    x = _batch(k=k)
    loss = gramviz.GRAMLoss(temperature=tau, label_smoothing=eps).double()
    assert loss.temperature.item() == pytest.approx(tau, rel=1e-6)  # log(tau) was stored in float32
    logits = -ref.volume_matrix(x[0], *x[1:]) / loss.temperature.item()
    terms = loss(*x, return_terms=True)
    assert terms["loss"].item() == pytest.approx(_symmetric(logits, eps), rel=1e-10)
    t = list(range(6))
    assert terms["loss_d2a"].item() == pytest.approx(ref.smoothed_ce_rows(logits, t, eps), rel=1e-10)
    assert terms["loss_a2d"].item() == pytest.approx(ref.smoothed_ce_rows(logits.T, t, eps), rel=1e-10)


def test_pairwise_and_fused_losses_equal_hand_written_formulas():
    t, v, a = (torch.randn(5, 8, dtype=torch.float64) for _ in range(3))
    cos = lambda x, y: np.array([[ref.cosine(xi, yj) for yj in ref.as64(y)] for xi in ref.as64(x)])  # noqa: E731
    pair = gramviz.PairwiseInfoNCELoss(temperature=0.1).double()
    tau = pair.temperature.item()
    want = (_symmetric(cos(t, v) / tau, 0.1) + _symmetric(cos(t, a) / tau, 0.1)) / 2
    assert pair(t, v, a).item() == pytest.approx(want, rel=1e-10)
    fused_vec = F.normalize(F.normalize(v, dim=-1) + F.normalize(a, dim=-1), dim=-1)
    fused = gramviz.FusedInfoNCELoss(temperature=0.1).double()
    assert fused(t, v, a).item() == pytest.approx(_symmetric(cos(t, fused_vec) / tau, 0.1), rel=1e-10)


@pytest.mark.parametrize("dims", [(1,), (0,), (1, 0)])
def test_smoothed_cross_entropy_matches_torch(dims):
    x = torch.randn(7, 5, dtype=torch.float64, requires_grad=True) * 3
    targets = torch.randint(0, 5 if dims == (1,) else 7, (7 if dims == (1,) else 5,))
    if dims == (1, 0):
        x, targets = torch.randn(6, 6, dtype=torch.float64, requires_grad=True), torch.randperm(6)
    got = smoothed_cross_entropy(x, targets, dims, eps=0.1)
    for value, dim in zip(got, dims):
        want = F.cross_entropy(x if dim == 1 else x.T, targets, label_smoothing=0.1)
        assert value.item() == pytest.approx(want.item(), rel=1e-12)
    assert torch.autograd.gradcheck(lambda y: smoothed_cross_entropy(y, targets, dims, 0.1), (x.detach().requires_grad_(),))


@pytest.mark.parametrize("cls", [gramviz.GRAMLoss, gramviz.PairwiseInfoNCELoss, gramviz.FusedInfoNCELoss])
def test_gradcheck_losses_including_temperature(cls):
    loss = cls(temperature=0.2).double()
    x = [v.requires_grad_() for v in _batch(b=4, d=5)]
    assert torch.autograd.gradcheck(lambda *y: loss(*y), x)
    # the temperature's gradient too: d loss / d log(tau) against a central difference
    loss(*x).backward()
    analytic = loss.log_temperature.grad.item()
    with torch.no_grad():
        loss.log_temperature += 1e-6
        up = loss(*x).item()
        loss.log_temperature -= 2e-6
        down = loss(*x).item()
    assert analytic == pytest.approx((up - down) / 2e-6, rel=1e-5)


def test_temperature_is_log_parameterised_and_clamped():
    loss = gramviz.GRAMLoss(temperature=0.07)
    assert isinstance(loss.log_temperature, torch.nn.Parameter)
    assert loss.temperature.item() == pytest.approx(0.07)
    with torch.no_grad():
        loss.log_temperature.fill_(-50.0)
    assert loss.temperature.item() == pytest.approx(0.01)
    with torch.no_grad():
        loss.log_temperature.fill_(50.0)
    assert loss.temperature.item() == pytest.approx(1.0)
    fixed = gramviz.GRAMLoss(temperature=0.05, learnable_temperature=False)
    assert list(fixed.parameters()) == [] and "log_temperature" in fixed.state_dict()


def test_training_steps_reduce_the_gram_loss():
    # a few optimisation steps on free embeddings must bring matching tuples together
    x = [torch.randn(16, 8, requires_grad=True) for _ in range(3)]
    loss = gramviz.GRAMLoss()
    opt = torch.optim.Adam([*x, *loss.parameters()], lr=0.05)
    first = None
    for _ in range(60):
        value = loss(*(F.normalize(v, dim=-1) for v in x))
        first = value.item() if first is None else first
        opt.zero_grad()
        value.backward()
        opt.step()
    assert value.item() < 0.5 * first
    vols = gramviz.volume_matrix(*(F.normalize(v, dim=-1) for v in x)).detach()
    assert (vols.diagonal() < vols.min(1).values + 1e-6).float().mean() == 1.0  # every positive is the row minimum


def test_loss_rejects_bad_arguments():
    with pytest.raises(ValueError, match="temperature"):
        gramviz.GRAMLoss(temperature=0.0)
    with pytest.raises(ValueError, match="temperature"):
        gramviz.GRAMLoss(temperature=2.0)
    with pytest.raises(ValueError, match="label_smoothing"):
        gramviz.GRAMLoss(label_smoothing=1.0)
    loss = gramviz.GRAMLoss()
    with pytest.raises(ValueError, match="same batch size"):
        loss(torch.randn(4, 8), torch.randn(3, 8), torch.randn(3, 8))
    with pytest.raises(ValueError, match="at least one other modality"):
        loss(torch.randn(4, 8))
    with pytest.raises(ValueError, match="NaN"):
        loss(torch.randn(4, 8), torch.full((4, 8), float("nan")))


@pytest.mark.parametrize("cls", [gramviz.GRAMLoss, gramviz.PairwiseInfoNCELoss, gramviz.FusedInfoNCELoss])
def test_losses_under_bfloat16_autocast_stay_close_to_float32(cls):
    x = [F.normalize(torch.randn(32, 64), dim=-1).requires_grad_() for _ in range(3)]
    loss = cls()
    want = loss(*x).item()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = loss(*x)
    assert got.dtype == torch.float32 and abs(got.item() - want) < 0.05 * want
    got.backward()
    assert all(torch.isfinite(v.grad).all() for v in x)


def test_reused_buffers_never_serve_two_live_graphs():
    """The GRAM loss keeps its large matrices from call to call (gramviz._workspace): two losses
    whose graphs are alive at once, a graph kept for a second backward pass, and a kept output
    must all give the gradients of independent computations."""
    import gramviz

    g = torch.Generator().manual_seed(3)

    def batch():
        return [torch.nn.functional.normalize(torch.randn(6, 5, generator=g, dtype=torch.float64), dim=-1)
                .requires_grad_() for _ in range(3)]

    def alone(xs):
        ys = [x.detach().clone().requires_grad_() for x in xs]
        gramviz.GRAMLoss()(*ys).backward()
        return [y.grad for y in ys]

    a, b = batch(), batch()
    expected_a, expected_b = alone(a), alone(b)
    loss_fn = gramviz.GRAMLoss()
    la, lb = loss_fn(*a), loss_fn(*b)  # both graphs alive: the second may not reuse the first's memory
    lb.backward(retain_graph=True)
    la.backward()
    assert all(torch.allclose(x.grad, e, atol=1e-12) for x, e in zip(a, expected_a))
    assert all(torch.allclose(x.grad, e, atol=1e-12) for x, e in zip(b, expected_b))
    for x in b:
        x.grad = None
    lb.backward()  # the retained graph again, after other calls used the buffers
    assert all(torch.allclose(x.grad, e, atol=1e-12) for x, e in zip(b, expected_b))


def test_the_matched_logit_range_is_one_minus_twice_the_volume_over_tau():
    g = torch.Generator().manual_seed(5)
    t, v, a = (F.normalize(torch.randn(6, 5, generator=g, dtype=torch.float64), dim=-1).requires_grad_()
               for _ in range(3))
    matched = gramviz.GRAMLoss(logit_range="matched", temperature=0.1, learnable_temperature=False)
    vol = gramviz.volume_matrix(t, v, a)
    logits = (1 - 2 * vol) / 0.1  # spans [-1/tau, 1/tau] like cosine logits
    target = torch.arange(6)
    expected = (F.cross_entropy(logits, target, label_smoothing=0.1) + F.cross_entropy(logits.T, target,
                                                                                        label_smoothing=0.1)) / 2
    got = matched(t, v, a)
    assert torch.allclose(got, expected)
    grads = torch.autograd.grad(got, (t, v, a))
    assert all(torch.allclose(x, y) for x, y in zip(grads, torch.autograd.grad(expected, (t, v, a))))
    half = gramviz.GRAMLoss(temperature=0.05, learnable_temperature=False)  # the same softmax as tau / 2
    assert torch.allclose(half(t, v, a), got)
    with pytest.raises(ValueError, match="logit_range must be one of"):
        gramviz.GRAMLoss(logit_range="cosine")
