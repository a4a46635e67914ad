"""Training curves from a JSONL log: each logged series drawn with its values, clear errors."""

import json

import pytest

from gramviz.viz.training import panel_of, training_curves


def write_log(path, records, extra_lines=()):
    with open(path, "w") as f:
        for line in extra_lines:
            f.write(line + "\n")
        for r in records:
            f.write(json.dumps(r) + "\n")
    return path


def records():
    out = []
    for step in range(0, 50, 10):
        out.append({"step": step, "loss": 3.0 - step / 25, "temperature": 0.07 - step / 1e4, "lr": 1e-4, "phase": "train", "amp": True})
        if step % 20 == 0:
            out.append({"step": step, "epoch": step // 20, "val/t2va/R@1": step / 100, "val/t2va/MedR": 50 - step, "val/loss": 2.5})
    return out


def test_each_series_is_plotted_with_its_values(tmp_path):
    path = write_log(tmp_path / "log.jsonl", records(), extra_lines=[json.dumps({"config": {"lr": 1e-4}}), ""])
    fig = training_curves(path)
    traces = {tr.name: tr for tr in fig.data}
    assert set(traces) == {"loss", "temperature", "lr", "val/t2va/R@1", "val/t2va/MedR", "val/loss"}  # no "phase", "amp"
    assert list(traces["loss"].x) == [0, 10, 20, 30, 40]
    assert list(traces["loss"].y) == [3.0 - s / 25 for s in range(0, 50, 10)]
    assert list(traces["val/t2va/R@1"].x) == [0, 20, 40] and list(traces["val/t2va/R@1"].y) == [0, 0.2, 0.4]
    titles = [a.text for a in fig.layout.annotations]
    assert titles == ["loss", "temperature", "learning rate", "retrieval metrics", "ranks"]
    # loss and val/loss share the loss panel, the recall its own
    assert traces["loss"].yaxis == traces["val/loss"].yaxis != traces["val/t2va/R@1"].yaxis


def test_list_of_dicts_and_epoch_only_metrics():
    fig = training_curves([{"step": 1, "loss": 1.0}, {"epoch": 1, "val/v2t/R@5": 0.5}, {"epoch": 2, "val/v2t/R@5": 0.7}])
    r5 = next(tr for tr in fig.data if tr.name == "val/v2t/R@5")
    assert list(r5.x) == [1, 2] and list(r5.y) == [0.5, 0.7]
    assert "epoch" in {fig.layout[ax].title.text for ax in ("xaxis", "xaxis2")}


def test_panel_of():
    assert [panel_of(k) for k in ("loss_d2a", "temperature", "lr", "val/t2va/R@10", "val/t2va/MnR", "grad_norm")] == [
        "loss", "temperature", "learning rate", "retrieval metrics", "ranks", "other"]
    # the trainer's counts of clips are not metrics: they would flatten the recall axis
    assert [panel_of(k) for k in ("val/t2va/n", "val/missing/audio", "val/cls/top1")] == [
        "other", "other", "retrieval metrics"]
    # the volume-collapse statistics get their own panel
    assert {panel_of(k) for k in ("val/geom/pos_volume_std", "val/geom/height_median")} == {"volume geometry"}


def test_empty_and_malformed_logs_name_the_file_and_line(tmp_path):
    empty = write_log(tmp_path / "empty.jsonl", [], extra_lines=["", "  "])
    with pytest.raises(ValueError, match="empty.jsonl: the log is empty"):
        training_curves(empty)
    broken = write_log(tmp_path / "broken.jsonl", [{"step": 0, "loss": 1.0}], extra_lines=[json.dumps({"step": 0}), '{"step": 1, "loss": '])
    with pytest.raises(ValueError, match=r"broken.jsonl, line 2: not valid JSON"):
        training_curves(broken)
    with pytest.raises(ValueError, match="line 1: expected a JSON object"):
        training_curves(write_log(tmp_path / "list.jsonl", [[1, 2]]))
    with pytest.raises(ValueError, match="'step' must be a number"):
        training_curves([{"step": "one", "loss": 1.0}])
    with pytest.raises(ValueError, match="no line has a step"):
        training_curves([{"loss": 1.0}, {"step": 1, "phase": "train"}])
    with pytest.raises(TypeError):
        training_curves(42)
    with pytest.raises(FileNotFoundError):
        training_curves(tmp_path / "missing.jsonl")


def test_each_panel_has_its_legend_beside_it():
    fig = training_curves(records())
    panels = [a.text for a in fig.layout.annotations]
    for r, panel in enumerate(panels, start=1):
        legend = "legend" if r == 1 else f"legend{r}"
        axis = "y" if r == 1 else f"y{r}"
        traces = [tr for tr in fig.data if tr.yaxis == axis]
        assert traces and all((tr.legend or "legend") == legend for tr in traces)
        box, domain = fig.layout[legend], fig.layout["yaxis" if r == 1 else f"yaxis{r}"].domain
        assert box.x > 1 and box.y == domain[1] and box.yanchor == "top"  # right of the panel, level with its top
