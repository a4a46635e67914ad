"""Data-anchor matching (DAM), checked by hand against references written here from the math.

* Hard negatives: `sample_hard_negatives` draws, for each anchor (row of V), one candidate from
  softmax(-V[i] / tau) over j != i, and for each candidate (column) one anchor the same way. The
  reference builds those probabilities itself and draws with ``torch.multinomial`` from a generator
  in the same state, so the draws must be equal, not just alike; a statistical check also compares
  frequencies over many draws with the softmax's odds.
* The loss: `dam_loss` is the binary cross-entropy of the head's logits on the B positives (label 1)
  and the 2B drawn hard negatives (label 0), averaged over the 3B pairs. The reference scores each
  pair with its own one-pair pass through the head (the caption's tokens with the clip's) and
  writes the cross-entropy as -log(sigmoid(x)) and -log(1 - sigmoid(x)).
* Re-ranking: `dam_rerank` changes only the top k of each row, in both query directions.
"""

import pytest
import torch

import gramviz
from gramviz.models import dam_loss, dam_rerank, sample_hard_negatives
from gramviz.models.dam import pair_logits
from test_models import batch, small_model

# ---------------------------------------------------------------- references


def negative_probabilities(V: torch.Tensor, tau: float) -> torch.Tensor:
    """(B, B) float64: row i is softmax(-V[i, j] / tau) over j != i, and 0 at j == i."""
    v = V.double()
    other = ~torch.eye(v.shape[0], dtype=torch.bool)
    nearest = v.masked_fill(~other, float("inf")).min(dim=1, keepdim=True).values  # shift: no overflow at small tau
    weights = torch.exp(-(v - nearest) / tau) * other
    return weights / weights.sum(dim=1, keepdim=True)


def reference_hard_negatives(V: torch.Tensor, tau: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Candidates drawn along the rows, then anchors along the columns (the order the two draws use
    the generator in), each as one float32 ``torch.multinomial`` draw per row of a row-major matrix
    (the generator's numbers are consumed in memory order, so the transpose is made contiguous)."""
    rows = negative_probabilities(V, tau).float().contiguous()
    columns = negative_probabilities(V.T, tau).float().contiguous()
    return (torch.multinomial(rows, 1, generator=generator).squeeze(1),
            torch.multinomial(columns, 1, generator=generator).squeeze(1))


def hand_logit(model, tokens, caption: int, clip: int) -> torch.Tensor:
    """The head's logit of one pair in a pass of its own: caption ``caption``'s text tokens with
    clip ``clip``'s video and audio tokens."""
    row = {m: (caption if m == "text" else clip) for m in tokens}
    return model.dam({m: t[[row[m]]] for m, t in tokens.items()},
                     {m: k[[row[m]]] for m, k in tokens.masks.items()})[0]


def spread_head(model):
    """Make the (untrained) head's logits large and uneven: near 0 every pair's cross-entropy is
    about ln 2 whatever its label, and a swapped label would change the loss little."""
    with torch.no_grad():
        model.dam.out[1].weight.mul_(20.0)
        model.dam.out[1].bias.fill_(1.5)
    return model


# ---------------------------------------------------------------- hard negatives


@pytest.mark.parametrize("b, tau, seed", [(2, 0.07, 0), (5, 0.07, 1), (8, 0.5, 2), (16, 0.02, 3), (32, 0.07, 4)])
def test_hard_negatives_are_the_draws_of_softmax_of_minus_volume_without_the_positive(b, tau, seed):
    V = torch.rand(b, b, generator=torch.Generator().manual_seed(100 + seed))
    V.diagonal().zero_()  # the positive is the best-aligned pair: drawn at once if it were not excluded
    cands, anchors = sample_hard_negatives(V, tau, generator=torch.Generator().manual_seed(seed))
    ref_cands, ref_anchors = reference_hard_negatives(V, tau, torch.Generator().manual_seed(seed))
    assert cands.tolist() == ref_cands.tolist()
    assert anchors.tolist() == ref_anchors.tolist()
    own = torch.arange(b)
    assert (cands != own).all() and (anchors != own).all()


def test_hard_negative_frequencies_match_the_softmax_odds_along_rows_and_columns():
    # the draws' frequencies, independent of how torch.multinomial uses its generator; V is not
    # symmetric, so rows (negative candidates) and columns (negative anchors) have different odds
    V = torch.tensor([[0.0, 0.1, 0.3, 0.6], [0.2, 0.0, 0.05, 0.4], [0.5, 0.1, 0.0, 0.2], [0.3, 0.6, 0.1, 0.0]])
    tau, n = 0.2, 4000
    generator = torch.Generator().manual_seed(0)
    draws = [sample_hard_negatives(V, tau, generator) for _ in range(n)]
    rows = torch.stack([c for c, _ in draws])  # (n, 4): the candidate drawn for each anchor
    cols = torch.stack([a for _, a in draws])  # (n, 4): the anchor drawn for each candidate
    freq_rows = torch.stack([torch.bincount(rows[:, i], minlength=4) for i in range(4)]).double() / n
    freq_cols = torch.stack([torch.bincount(cols[:, j], minlength=4) for j in range(4)]).double() / n
    # binomial standard error <= 0.008 at n = 4000: 0.035 is over 4 of them
    torch.testing.assert_close(freq_rows, negative_probabilities(V, tau), atol=0.035, rtol=0)
    torch.testing.assert_close(freq_cols, negative_probabilities(V.T, tau), atol=0.035, rtol=0)


def test_hard_negatives_follow_softmax_of_minus_volume_rows():
    V = torch.ones(4, 4)
    V[0, 2] = V[1, 3] = V[2, 0] = V[3, 1] = 0.0  # one near-aligned wrong candidate per anchor
    V[3, 0] = -50.0  # column 0 (for candidate 0): anchor 3 is certain
    cands, anchors = sample_hard_negatives(V, temperature=0.01, generator=torch.Generator().manual_seed(0))
    assert cands.tolist() == [2, 3, 0, 0]  # row 3: V[3, 0] = -50 beats V[3, 1] = 0
    assert anchors[0] == 3
    # never the positive (volume 0 here); candidates i+1 (V = 0.1) and i+2 (V = 0.2) are drawn
    # with the odds of softmax(-V / 0.1): e : 1; every other candidate (V = 5) almost never
    n = 2000
    rows = torch.arange(n)
    V = torch.full((n, n), 5.0)
    V[rows, rows] = 0.0
    V[rows, (rows + 1) % n], V[rows, (rows + 2) % n] = 0.1, 0.2
    offset = (sample_hard_negatives(V, temperature=0.1)[0] - rows) % n
    counts = torch.bincount(offset, minlength=3)[:3].double() / n
    e = torch.exp(torch.tensor(1.0, dtype=torch.float64))
    torch.testing.assert_close(counts, torch.stack([e * 0, e / (e + 1), 1 / (e + 1)]), atol=0.04, rtol=0)


# ---------------------------------------------------------------- the loss


@pytest.mark.parametrize("b, tau, seed", [(4, 0.07, 0), (6, 0.5, 3)])
def test_dam_loss_is_the_cross_entropy_of_positives_as_1_and_drawn_hard_negatives_as_0(b, tau, seed):
    model = spread_head(small_model(dam=True).eval())  # eval: no dropout, each pass gives the same logits
    with torch.no_grad():
        emb, tokens = model.encode(batch(b), return_tokens=True)
        V = gramviz.volume_matrix(emb["text"], emb["video"], emb["audio"])
        neg_cands, neg_anchors = reference_hard_negatives(V, tau, torch.Generator().manual_seed(seed))
        positives = torch.stack([hand_logit(model, tokens, i, i) for i in range(b)]).double()
        negatives = torch.stack([hand_logit(model, tokens, i, int(neg_cands[i])) for i in range(b)]
                                + [hand_logit(model, tokens, int(neg_anchors[j]), j) for j in range(b)]).double()
        # swapping the labels would move the loss by mean(positives) - mean(negatives) over 3B pairs
        assert abs(positives.sum() - negatives.sum()) / (3 * b) > 0.1
        expected = (-torch.log(torch.sigmoid(positives)).sum()
                    - torch.log(1 - torch.sigmoid(negatives)).sum()) / (3 * b)
        loss = dam_loss(model, tokens, V, temperature=tau, generator=torch.Generator().manual_seed(seed))
        # pair_logits pairs the anchor's (text) row with the candidate's (clip) rows, as hand_logit does
        picked = pair_logits(model, tokens, torch.tensor([0, 1, 2]), torch.tensor([0, 2, 1]))
        by_hand = torch.stack([hand_logit(model, tokens, i, j) for i, j in ((0, 0), (1, 2), (2, 1))])
    assert loss.ndim == 0
    torch.testing.assert_close(loss.double(), expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(picked, by_hand, atol=1e-5, rtol=0)


def test_dam_loss_of_one_sample_is_the_cross_entropy_of_its_positive():
    model = spread_head(small_model(dam=True).eval())
    with torch.no_grad():
        _, tokens = model.encode(batch(1), return_tokens=True)
        loss = dam_loss(model, tokens, torch.zeros(1, 1))
        expected = -torch.log(torch.sigmoid(hand_logit(model, tokens, 0, 0).double()))
    torch.testing.assert_close(loss.double(), expected, atol=1e-6, rtol=0)


def test_dam_loss_is_finite_and_trains_the_head_and_the_encoders():
    model = small_model(dam=True)
    emb, tokens = model.encode(batch(4), return_tokens=True)
    V = gramviz.volume_matrix(emb["text"], emb["video"], emb["audio"])
    loss = dam_loss(model, tokens, V, generator=torch.Generator().manual_seed(0))
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    for part in (model.dam, *model.encoders.values()):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters())
    one = model.encode({k: v[:1] for k, v in batch(1).items()}, return_tokens=True)[1]
    assert torch.isfinite(dam_loss(model, one, torch.zeros(1, 1)))
    with pytest.raises(ValueError, match="no DAM head"):
        dam_loss(small_model(), tokens, V)


# ---------------------------------------------------------------- re-ranking


def test_dam_rerank_reorders_only_the_top_k():
    model = small_model(dam=True)
    b = batch(6)
    _, tokens = model.encode(b, return_tokens=True)
    scores = torch.randn(6, 6)
    out = dam_rerank(model, tokens, scores, k=3)
    top = scores.topk(3, dim=1).indices
    assert set(out.topk(3, dim=1).indices[0].tolist()) == set(top[0].tolist())
    rest = torch.ones_like(scores, dtype=torch.bool).scatter(1, top, False)
    assert torch.equal(out[rest], scores[rest].double())
    out_t = dam_rerank(model, tokens, scores.T.contiguous(), k=3, queries="candidates")
    top_t = scores.T.topk(3, dim=1).indices.sort(1).values
    assert out_t.shape == (6, 6) and torch.equal(out_t.topk(3, dim=1).indices.sort(1).values, top_t)
    # the DAM probabilities of the anchor->candidate and candidate->anchor views agree pair by pair
    both = (out > scores.max() + 1) & (out_t.T > scores.max() + 1)
    torch.testing.assert_close(out[both], out_t.T[both])
