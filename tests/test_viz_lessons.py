"""The notebooks' figures: volume concentration, temperature, volume separation, the confusion
matrix, the study comparison and the inline media gallery, each drawing exactly its input."""

import base64

import numpy as np
import pytest
import torch

from gramviz.analysis import random_unit_volumes
from gramviz.viz.classification import confusion_heatmap
from gramviz.viz.lessons import temperature_softmax, volume_concentration, volume_separation
from gramviz.viz.media import clip_gallery, media_html
from gramviz.viz.study import study_comparison


def test_volume_concentration_draws_the_random_volumes_per_dimension():
    fig = volume_concentration(dims=(3, 64, 512), n=300, seed=2)
    assert [tr.name for tr in fig.data] == ["D = 3", "D = 64", "D = 512"]
    for tr, d in zip(fig.data, (3, 64, 512)):
        assert np.allclose(tr.y, random_unit_volumes(d, n=300, seed=2).numpy())
    medians = fig.layout.meta["median"]
    assert medians == sorted(medians) and medians[-1] > 0.99
    with pytest.raises(ValueError):
        volume_concentration(dims=())


def test_temperature_softmax_gives_the_softmax_of_minus_volume_over_tau():
    volumes = torch.tensor([0.3, 0.8, 0.95, 0.9])
    fig = temperature_softmax(volumes, temperatures=(1.0, 0.07), target=0)
    for tr, tau, p in zip(fig.data, (1.0, 0.07), fig.layout.meta["probabilities"]):
        assert np.allclose(tr.y, torch.softmax(-volumes.double() / tau, 0).numpy())
        assert sum(p) == pytest.approx(1.0)
    assert fig.data[1].y[0] > 0.99 > fig.data[0].y[0]  # a small temperature makes the choice confident
    assert "match" in fig.data[0].x[0] and "match" not in fig.data[0].x[1]
    with pytest.raises(ValueError, match="positive"):
        temperature_softmax(volumes, temperatures=(0.0,))
    with pytest.raises(ValueError, match="target"):
        temperature_softmax(volumes, target=4)


def test_volume_separation_draws_medians_bands_and_the_auc_per_epoch():
    g = np.random.default_rng(0)
    history = [{"epoch": e, "positives": g.uniform(0.9 - 0.2 * e, 1.0 - 0.2 * e, 30),
                "negatives": g.uniform(0.85, 1.0, 200)} for e in range(4)]
    fig = volume_separation(history)
    medians = {tr.name: list(tr.y) for tr in fig.data if tr.mode == "lines+markers"}
    assert medians["matching: median"] == pytest.approx([np.median(h["positives"]) for h in history])
    assert medians["non-matching: median"] == pytest.approx([np.median(h["negatives"]) for h in history])
    for h, auc in zip(history, fig.layout.meta["auc"]):  # P(a matching volume < a non-matching one), ties half
        pos, neg = h["positives"][:, None], h["negatives"][None, :]
        assert auc == pytest.approx(float(((pos < neg) + 0.5 * (pos == neg)).mean()))
    assert fig.layout.meta["auc"][-1] == 1.0 and fig.layout.meta["epochs"] == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="lacks"):
        volume_separation([{"epoch": 0, "positives": [0.5]}])
    with pytest.raises(ValueError, match="empty"):
        volume_separation([])


def test_confusion_heatmap_normalises_rows_and_reports_the_accuracy():
    counts = torch.tensor([[3, 1, 0], [0, 0, 0], [2, 0, 4]])
    fig = confusion_heatmap(counts, ["ball", "cube", "star"])
    assert np.allclose(fig.data[0].z, [[0.75, 0.25, 0], [0, 0, 0], [1 / 3, 0, 2 / 3]])  # an empty row stays 0
    assert fig.layout.meta["accuracy"] == pytest.approx(0.7) and list(fig.data[0].y) == ["ball", "cube", "star"]
    assert np.array_equal(confusion_heatmap(counts, normalise=False).data[0].z, counts.numpy())
    with pytest.raises(ValueError, match="square"):
        confusion_heatmap(np.ones((2, 3)))
    with pytest.raises(ValueError, match="class names"):
        confusion_heatmap(counts, ["a", "b"])


def summary():
    stats = {
        "gram": {"test": {"t2va/R@1": [0.9, 0.01], "v2a/R@1": [0.01, 0.005]}, "val": {"t2va/R@1": [0.8, 0.02]}},
        "pairwise": {"test": {"t2va/R@1": [0.7, 0.03]}},
    }
    return {"seeds": [0, 1, 2], "stats": stats, "ceiling_v2a": 0.41}


def test_study_comparison_draws_means_with_std_error_bars_and_the_ceiling():
    fig = study_comparison(summary(), split="test", metrics=("t2va/R@1", "v2a/R@1"))
    bars = {tr.meta["variant"]: tr for tr in fig.data if tr.type == "bar"}
    assert list(bars) == ["gram", "pairwise"]
    assert list(bars["gram"].y) == [0.9, 0.01] and list(bars["gram"].error_y.array) == [0.01, 0.005]
    assert list(bars["pairwise"].y) == [0.7, None]  # a metric the variant lacks gets no bar
    assert bars["gram"].name == "GRAM" and bars["pairwise"].name.startswith("pairwise cosine")
    ceiling = [tr for tr in fig.data if tr.type == "scatter"]
    assert len(ceiling) == 1 and list(ceiling[0].y) == [0.41] and list(ceiling[0].x) == ["v2a/R@1"]
    assert "3 seeds" in fig.layout.title.text
    val = study_comparison(summary(), split="val", metrics=("t2va/R@1",))
    assert [tr.meta["variant"] for tr in val.data] == ["gram"]  # no ceiling mark without v2a
    with pytest.raises(ValueError, match="no variant was evaluated on split 'compositional'"):
        study_comparison(summary(), split="compositional")
    with pytest.raises(ValueError, match="stats"):
        study_comparison({"seeds": [0]})


def test_clip_gallery_embeds_each_file_with_its_title(tmp_path):
    video, sound = tmp_path / "clip.mp4", tmp_path / "sound.wav"
    video.write_bytes(b"\x00\x01 not really a video")
    sound.write_bytes(b"RIFF....WAVE")
    gallery = clip_gallery([video, sound], titles=["a <red> ball", "rain"], width=150)
    html = gallery.data
    assert html.count("<video") == 1 and html.count("<audio") == 1
    assert f"data:video/mp4;base64,{base64.b64encode(video.read_bytes()).decode()}" in html
    assert f"data:audio/wav;base64,{base64.b64encode(sound.read_bytes()).decode()}" in html
    assert "a &lt;red&gt; ball" in html and 'width="150"' in html
    with pytest.raises(ValueError, match="titles"):
        clip_gallery([video], titles=["a", "b"])
    with pytest.raises(ValueError, match="cannot embed"):
        media_html(tmp_path / "notes.txt")
    with pytest.raises(FileNotFoundError):
        media_html(tmp_path / "missing.mp4")
