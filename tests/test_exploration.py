"""The dashboard's pure functions against independent computations: float64 determinants, brute-force
ranks and nearest clips, a point-in-polygon walk, files read back."""

from __future__ import annotations

import csv
import json
import math

import pytest
import torch

from gramviz.exploration import (
    clip_metrics,
    clips_in_box,
    clips_in_lasso,
    compare_metrics,
    filter_clips,
    inspect_clip,
    selection_rows,
    write_rows,
)


def _gallery(n=12, captions_per_clip=2, d=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    video, audio = torch.randn(n, d, generator=g), torch.randn(n, d, generator=g)
    owner = [c for c in range(n) for _ in range(captions_per_clip)]
    text = torch.stack([video[c] + audio[c] + 0.8 * torch.randn(d, generator=g) for c in owner])
    return {"text": text, "video": video, "audio": audio}, owner


def _unit(x):
    return x.double() / x.double().norm()


def _det_volume(*vs):
    a = torch.stack([_unit(v) for v in vs])
    return math.sqrt(max(float(torch.det(a @ a.T)), 0.0))


def test_clip_metrics_against_determinants_and_brute_force_ranks():
    emb, owner = _gallery()
    n, captions = 12, [f"caption {i}" for i in range(24)]
    m = clip_metrics(emb, [f"c{i}" for i in range(n)], owner, captions)
    t, v, a = emb["text"], emb["video"], emb["audio"]
    for c in range(n):
        first = owner.index(c)
        vol = _det_volume(t[first], v[c], a[c])
        base = _det_volume(v[c], a[c])
        assert m.values["volume"][c].item() == pytest.approx(vol, abs=1e-9)
        assert m.values["base"][c].item() == pytest.approx(base, abs=1e-9)
        assert m.values["height"][c].item() == pytest.approx(vol / base, abs=1e-9)
        # rank of clip c when its first caption queries every clip, by brute force
        vols = [_det_volume(t[first], v[j], a[j]) for j in range(n)]
        assert m.values["clip_rank"][c].item() == 1 + sum(x < vols[c] for j, x in enumerate(vols) if j != c)
        # rank of the clip's best own caption among all captions
        cap = [_det_volume(t[i], v[c], a[c]) for i in range(len(owner))]
        best = min(x for i, x in enumerate(cap) if owner[i] == c)
        assert m.values["caption_rank"][c].item() == 1 + sum(x <= best for i, x in enumerate(cap) if owner[i] != c)
        assert m.values["cos_va"][c].item() == pytest.approx(float(_unit(v[c]) @ _unit(a[c])), abs=1e-12)
        heights = [_det_volume(t[first], v[c], a[c]) / _det_volume(*p) for p in ((v[c], a[c]), (t[first], a[c]),
                                                                                  (t[first], v[c]))]
        assert m.values["least_aligned"][c].item() == max(range(3), key=heights.__getitem__)
        anchor = _unit(_unit(v[c]) + _unit(a[c]))
        others = [(j, _det_volume(anchor, v[j], a[j])) for j in range(n) if j != c]
        assert m.values["nearest"][c].item() == min(others, key=lambda x: x[1])[0]
    row = m.row(3)
    assert row["id"] == "c3" and row["caption"] == "caption 6" and row["nearest"].startswith("c")


def test_clips_without_captions_have_no_caption_metrics():
    emb, owner = _gallery(n=5, captions_per_clip=1)
    keep = [i for i, c in enumerate(owner) if c != 2]
    emb["text"] = emb["text"][keep]
    m = clip_metrics(emb, list("abcde"), [owner[i] for i in keep])
    assert math.isnan(m.values["volume"][2].item()) and m.values["clip_rank"][2].item() == 0
    row = m.row(2)
    assert row["volume"] is None and row["clip_rank"] is None and row["least_aligned"] is None
    assert row["base"] == pytest.approx(_det_volume(emb["video"][2], emb["audio"][2]))
    # no text at all: media metrics only
    m2 = clip_metrics({k: emb[k] for k in ("video", "audio")}, list("abcde"))
    assert all(r["volume"] is None for r in selection_rows(m2, range(5)))
    assert filter_clips(m2, worst=2, by="volume") == []


def test_bad_inputs_are_named():
    emb, owner = _gallery(n=4)
    with pytest.raises(ValueError, match="missing: audio"):
        clip_metrics({"video": emb["video"]}, list("abcd"))
    with pytest.raises(ValueError, match="caption_clips"):
        clip_metrics(emb, list("abcd"), owner[:-1])
    bad = dict(emb, video=emb["video"].clone())
    bad["video"][1, 0] = float("nan")
    with pytest.raises(ValueError, match="video embeddings hold NaN"):
        clip_metrics(bad, list("abcd"), owner)
    with pytest.raises(ValueError, match="no clip 9"):
        inspect_clip(emb, 9, owner)


def test_box_and_lasso_select_by_hand():
    xy = [[0, 0], [1, 1], [2, 2], [3, 0.5], [1.5, 1.5]]
    clips = [0, 0, 1, 2, 3]
    assert clips_in_box(xy, clips, (0.5, 2.5), (2.5, 0.5)) == [0, 1, 3]
    assert clips_in_box(xy, clips, (10, 11), (0, 1)) == []
    triangle = [[0.5, 0.0], [3.5, 0.0], [3.5, 2.0]]  # below the line y = (x - 0.5) * 2 / 3
    assert clips_in_lasso(xy, clips, triangle) == [2]
    with pytest.raises(ValueError, match="3 vertices"):
        clips_in_lasso(xy, clips, [[0, 0], [1, 1]])


def test_filters_worst_class_and_word():
    emb, owner = _gallery()
    captions = [f"a {'dog' if i % 4 == 0 else 'cat'} sound {i}" for i in range(24)]
    classes = ["bark" if c % 3 == 0 else "meow" for c in range(12)]
    m = clip_metrics(emb, [f"c{i}" for i in range(12)], owner, captions, classes)
    vol = m.values["volume"]
    worst = filter_clips(m, worst=3, by="volume")
    assert worst == sorted(range(12), key=lambda c: -float(vol[c]))[:3]
    assert filter_clips(m, worst=2, by="cos_va") == sorted(range(12), key=lambda c: float(m.values["cos_va"][c]))[:2]
    assert filter_clips(m, class_name="bark") == [0, 3, 6, 9]
    dogs = filter_clips(m, word="Dog")
    assert dogs == [c for c in range(12) if "dog" in m.captions[c]] and dogs
    assert filter_clips(m, class_name="bark", clips=[0, 1, 2, 3]) == [0, 3]
    with pytest.raises(ValueError, match="unknown column"):
        filter_clips(m, worst=2, by="colour")


def test_inspection_matches_independent_computation():
    emb, owner = _gallery()
    i = inspect_clip(emb, 4, owner, k=3)
    t, v, a = (_unit(emb["text"][owner.index(4)]), _unit(emb["video"][4]), _unit(emb["audio"][4]))
    stacked = torch.stack([t, v, a])
    assert torch.allclose(i.gram, stacked @ stacked.T)
    assert i.volume == pytest.approx(_det_volume(t, v, a), abs=1e-9)
    assert i.heights["video"] == pytest.approx(_det_volume(t, v, a) / _det_volume(t, a), abs=1e-9)
    anchor = _unit(v + a)
    others = [j for j in range(12) if j != 4]
    by_vol = sorted(others, key=lambda j: _det_volume(anchor, emb["video"][j], emb["audio"][j]))
    assert [c for c, _ in i.by_volume] == by_vol[:3]
    cos = {j: float((_unit(emb["video"][j]) @ v + _unit(emb["audio"][j]) @ a) / 2) for j in range(12) if j != 4}
    assert [c for c, _ in i.by_cosine] == sorted(cos, key=lambda j: -cos[j])[:3]
    assert i.by_cosine[0][1] == pytest.approx(max(cos.values()))


def test_comparison_ranks_and_disagreement():
    emb, owner = _gallery()
    ids = [f"c{i}" for i in range(12)]
    a = clip_metrics(emb, ids, owner)
    shuffled = dict(emb, video=emb["video"][torch.randperm(12, generator=torch.Generator().manual_seed(1))])
    b = clip_metrics(shuffled, ids, owner)
    comp = compare_metrics(a, b, ("trained", "shuffled"))
    assert len(comp.rows) == 12
    top = comp.rows[0]
    assert top["rank_a"] == a.values["clip_rank"][top["clip"]].item()
    assert top["disagreement"] == pytest.approx(abs(math.log2(top["rank_a"]) - math.log2(top["rank_b"])))
    assert [r["disagreement"] for r in comp.rows] == sorted((r["disagreement"] for r in comp.rows), reverse=True)
    with pytest.raises(ValueError, match="same gallery"):
        compare_metrics(a, clip_metrics({k: x[:6] for k, x in emb.items()}, ids[:6]))


def test_export_reads_back(tmp_path):
    emb, owner = _gallery()
    captions = [f'cap "{i}", with comma' for i in range(24)]
    m = clip_metrics(emb, [f"c{i}" for i in range(12)], owner, captions)
    rows = selection_rows(m, [5, 1])
    back = list(csv.DictReader(write_rows(rows, tmp_path / "sel.csv").open(encoding="utf-8")))
    assert [r["id"] for r in back] == ["c5", "c1"] and back[0]["caption"] == captions[10]
    assert float(back[0]["volume"]) == pytest.approx(rows[0]["volume"])
    lines = (write_rows(rows, tmp_path / "sub" / "sel.jsonl")).read_text(encoding="utf-8").splitlines()
    assert [json.loads(x) for x in lines] == rows
    with pytest.raises(ValueError, match=r"\.csv or a \.jsonl"):
        write_rows(rows, tmp_path / "sel.txt")


def test_a_clip_without_audio_is_never_a_neighbour_nor_ranked():
    emb, owner = _gallery(n=8, captions_per_clip=1)
    emb["audio"] = emb["audio"].clone()
    emb["audio"][3] = 0  # GRAM's "missing" row
    m = clip_metrics(emb, [f"c{i}" for i in range(8)], owner, [f"a dog{'!' if i == 5 else ''} {i}" for i in range(8)])
    assert 3 not in m.values["nearest"].tolist()[:3] + m.values["nearest"].tolist()[4:]
    row = m.row(3)
    assert all(row[k] is None for k in ("volume", "base", "height", "clip_rank", "cos_va", "nearest", "least_aligned"))
    t, v, a = emb["text"], emb["video"], emb["audio"]
    for c in (0, 5):  # brute-force rank among the complete clips only
        vols = [_det_volume(t[c], v[j], a[j]) for j in range(8) if j != 3]
        assert m.values["clip_rank"][c].item() == 1 + sum(x < _det_volume(t[c], v[c], a[c]) for x in vols)
    assert 3 not in [j for j, _ in inspect_clip(emb, 0, owner, k=7).by_volume]
    assert len(inspect_clip(emb, 0, owner, k=7).by_cosine) == 6
    with pytest.raises(ValueError, match="lacks a video or an audio"):
        inspect_clip(emb, 3, owner)
    assert filter_clips(m, word="dog") == list(range(8)) and 3 not in filter_clips(m, worst=8, by="cos_va")
