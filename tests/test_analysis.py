"""gramviz.analysis: random volumes, matching tuples, worst-aligned clips and the helpers around
them, checked against float64 brute force (determinants, explicit ranks)."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gramviz import analysis
from gramviz.analysis import (
    clip_tuples,
    collapse_metrics,
    find_upwards,
    markdown_table,
    matching_volumes,
    negative_partners,
    random_unit_volumes,
    worst_aligned,
)


def brute_volume(*vectors):
    a = np.stack([np.asarray(v, dtype=np.float64) for v in vectors], axis=1)  # (D, k)
    return math.sqrt(max(np.linalg.det(a.T @ a), 0.0))


def unit(n, d, seed):
    return F.normalize(torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64), dim=-1)


def test_random_unit_volumes_are_volumes_of_unit_vectors_and_crowd_near_one():
    v = random_unit_volumes(16, n=50, k=3, seed=4)
    g = torch.Generator().manual_seed(4)
    x = F.normalize(torch.randn(3, 50, 16, generator=g, dtype=torch.float64), dim=-1)
    assert v.dtype == torch.float64 and v.shape == (50,)
    for i in (0, 17, 49):
        assert float(v[i]) == pytest.approx(brute_volume(x[0, i], x[1, i], x[2, i]), rel=1e-9)
    medians = [float(random_unit_volumes(d, n=500).median()) for d in (3, 32, 512)]
    assert medians[0] < medians[1] < medians[2] and medians[2] > 0.99
    assert float(random_unit_volumes(2, n=20).max()) < 1e-12  # three vectors in a plane span no volume
    assert torch.equal(random_unit_volumes(8, n=10, seed=1), random_unit_volumes(8, n=10, seed=1))
    for bad in ({"dim": 0}, {"dim": 4, "k": 1}, {"dim": 4, "n": 0}, {"dim": 2.5}):
        with pytest.raises(ValueError):
            random_unit_volumes(**bad)


@pytest.mark.parametrize("rule", ["shifted", "random"])
def test_one_negative_per_anchor_by_the_named_rule(rule):
    t, v, a = unit(9, 6, 0), unit(9, 6, 1), unit(9, 6, 2)
    pos, neg = matching_volumes(t, v, a, negatives=rule, seed=3)
    partner = negative_partners(9, rule, seed=3)
    if rule == "shifted":
        assert partner.tolist() == [8, 0, 1, 2, 3, 4, 5, 6, 7]  # anchor i with the previous clip
    assert pos.shape == neg.shape == (9,) and all(int(partner[i]) != i for i in range(9))
    for i in range(9):
        j = int(partner[i])
        assert float(pos[i]) == pytest.approx(brute_volume(t[i], v[i], a[i]), rel=1e-9)
        assert float(neg[i]) == pytest.approx(brute_volume(t[i], v[j], a[j]), rel=1e-9)
    again = matching_volumes(t, v, a, negatives=rule, seed=3)[1]
    other_seed = matching_volumes(t, v, a, negatives=rule, seed=4)[1]
    assert torch.equal(neg, again) and (rule == "shifted") == torch.equal(neg, other_seed)


def test_random_negatives_cover_every_other_candidate():
    drawn = torch.stack([negative_partners(5, "random", seed=s) for s in range(200)])  # (200, 5)
    for i in range(5):
        assert set(drawn[:, i].tolist()) == set(range(5)) - {i}


def test_unknown_negative_rules_and_too_few_tuples_are_refused():
    t = unit(3, 4, 0)
    with pytest.raises(ValueError, match="negatives must be one of"):
        matching_volumes(t, t, negatives="hardest")
    with pytest.raises(ValueError, match="rule must be one of"):
        negative_partners(3, "all")
    with pytest.raises(ValueError, match="n >= 2"):
        negative_partners(1, "shifted")


def test_clip_tuples_take_each_clips_first_caption_and_skip_missing_media():
    emb = {"text": unit(7, 5, 0), "video": unit(4, 5, 1), "audio": unit(4, 5, 2)}
    emb["audio"][2] = 0  # clip 2 lacks its audio
    caption_clip = [3, 1, 1, 0, 3, 2, 0]  # clip 3: rows 0 and 4; clip 1: rows 1, 2; clip 0: rows 3, 6
    tuples = clip_tuples(emb, caption_clip)
    assert tuples.clips.tolist() == [0, 1, 3] and tuples.captions.tolist() == [3, 1, 0]
    assert torch.equal(tuples.text, emb["text"][[3, 1, 0]])
    assert torch.equal(tuples.video, emb["video"][[0, 1, 3]]) and torch.equal(tuples.audio, emb["audio"][[0, 1, 3]])
    with pytest.raises(ValueError, match="outside"):
        clip_tuples(emb, [0, 1, 2, 3, 4, 0, 0])
    with pytest.raises(ValueError, match="text rows"):
        clip_tuples(emb, [0, 1])
    with pytest.raises(ValueError, match="'audio' is missing"):
        clip_tuples({"text": emb["text"], "video": emb["video"]}, caption_clip)


def test_matching_volumes_are_the_diagonal_and_all_other_entries():
    t, v, a = unit(5, 6, 0), unit(5, 6, 1), unit(5, 6, 2)
    pos, neg = matching_volumes(t, v, a)
    assert pos.shape == (5,) and neg.shape == (20,)
    expected_neg = [brute_volume(t[i], v[j], a[j]) for i in range(5) for j in range(5) if i != j]  # row by row
    assert pos.tolist() == pytest.approx([brute_volume(t[i], v[i], a[i]) for i in range(5)], rel=1e-9)
    assert neg.tolist() == pytest.approx(expected_neg, rel=1e-9)
    with pytest.raises(ValueError):
        matching_volumes(t[:1], v[:1], a[:1])


def test_worst_aligned_lists_the_largest_volumes_with_base_height_and_rank():
    t, v, a = unit(8, 6, 3), unit(8, 6, 4), unit(8, 6, 5)
    t[2] = F.normalize(v[2] + a[2], dim=0)  # tuple 2 is coplanar: volume 0
    rows = worst_aligned(t, v, a, k=8)
    volumes = [brute_volume(t[i], v[i], a[i]) for i in range(8)]
    assert [r["row"] for r in rows] == list(np.argsort(volumes, kind="stable")[::-1])
    for r in rows:
        i = r["row"]
        assert r["volume"] == pytest.approx(volumes[i], abs=1e-9)
        assert r["base"] == pytest.approx(brute_volume(v[i], a[i]), rel=1e-9)
        assert r["base"] * r["height"] == pytest.approx(r["volume"], abs=1e-9)
        # rank: 1 + how many candidates span a volume no larger with anchor i (ties count against it)
        others = [brute_volume(t[i], v[j], a[j]) for j in range(8) if j != i]
        assert r["rank"] == 1 + sum(x <= volumes[i] + 1e-12 for x in others)
    best = worst_aligned(t, v, a, k=1, best=True)
    assert best[0]["row"] == 2 and best[0]["volume"] < 1e-9 and best[0]["rank"] == 1
    with pytest.raises(ValueError):
        worst_aligned(t, v, a, k=0)


def test_markdown_table_rounds_escapes_and_selects_columns():
    rows = [{"id": "a|b", "volume": 0.123456, "rank": 3, "note": "two\nlines"}, {"id": "c", "volume": 1.0, "rank": 1}]
    assert markdown_table(rows, columns=["id", "volume", "note"], digits=2).splitlines() == [
        "| id | volume | note |", "|---|---|---|", "| a\\|b | 0.12 | two lines |", "| c | 1.00 |  |"]
    with pytest.raises(ValueError):
        markdown_table([])


def test_find_upwards_finds_a_project_file_from_a_subfolder(tmp_path):
    (tmp_path / "docs" / "results").mkdir(parents=True)
    target = tmp_path / "docs" / "results" / "summary.json"
    target.write_text("{}")
    deep = tmp_path / "notebooks" / "sub"
    deep.mkdir(parents=True)
    assert find_upwards("docs/results/summary.json", start=deep) == target
    assert find_upwards("docs/results/summary.json", start=tmp_path) == target
    with pytest.raises(FileNotFoundError, match=r"docs/missing.json was not found in .*sub.*: run make results"):
        find_upwards("docs/missing.json", start=deep, hint="run make results")


def test_collapse_metrics_leave_out_incomplete_clips_and_sample_large_galleries(monkeypatch):
    g = torch.Generator().manual_seed(3)
    emb = {m: torch.randn(7, 5, generator=g) for m in ("text", "video", "audio")}
    emb["audio"][2] = 0  # a clip without audio is no tuple
    full = collapse_metrics(emb, range(7))
    kept = [0, 1, 3, 4, 5, 6]
    pos = [brute_volume(*(F.normalize(emb[m][i], dim=0) for m in ("text", "video", "audio"))) for i in kept]
    assert full["pos_volume_mean"] == pytest.approx(np.mean(pos)) and full["pos_volume_std"] == pytest.approx(
        np.std(pos, ddof=1))
    monkeypatch.setattr(analysis, "COLLAPSE_CLIPS", 4)
    sampled = collapse_metrics(emb, range(7), seed=1)
    assert sampled == collapse_metrics(emb, range(7), seed=1) and sampled != full
    with pytest.raises(ValueError, match="at least two clips"):
        collapse_metrics({m: x[:1] for m, x in emb.items()}, [0])
