"""Collapse curves: reading a study's logs back, when each run left the flat region, and the figure."""

import json

import pytest

from gramviz.study_curves import flat_exit_rows, flat_exits, study_curves


def _study(root, logs):
    for (variant, seed), records in logs.items():
        run = root / variant / f"seed-{seed}"
        run.mkdir(parents=True)
        (run / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
        (run / "result.json").write_text("{}")  # a finished run
    return root


LOGS = {
    ("gram", 0): [{"step": 10, "epoch": 0.5, "loss": 4.0, "geom/batch_pos_volume": 0.991234567},
                  {"step": 20, "epoch": 1.0, "loss": 3.0, "geom/batch_pos_volume": 0.95},
                  {"step": 20, "epoch": 1, "val/t2va/R@1": 0.2, "val/geom/pos_volume_std": 0.01},
                  {"step": 30, "epoch": 1.5, "loss": 2.0, "geom/batch_pos_volume": 0.85}],
    ("gram", 1): [{"step": 10, "epoch": 0.5, "geom/batch_pos_volume": 0.99},
                  {"step": 20, "epoch": 1.0, "geom/batch_pos_volume": 0.97}],
    ("pairwise", 0): [{"step": 10, "epoch": 0.5, "geom/batch_pos_volume": 0.88}, {"step": 10, "lr": 1e-3}],
}


def test_the_curves_keep_only_the_collapse_statistics_and_find_the_exit(tmp_path):
    curves = study_curves(_study(tmp_path, LOGS))
    assert sorted(curves["runs"]) == ["gram", "pairwise"] and sorted(curves["runs"]["gram"]) == [0, 1]
    first = curves["runs"]["gram"][0]
    assert [r["step"] for r in first] == [10, 20, 20, 30] and "loss" not in first[0]
    assert first[0]["geom/batch_pos_volume"] == 0.99123  # rounded to 5 digits
    assert first[2] == {"step": 20, "epoch": 1, "val/t2va/R@1": 0.2, "val/geom/pos_volume_std": 0.01}
    assert curves["runs"]["pairwise"][0] == [{"step": 10, "epoch": 0.5, "geom/batch_pos_volume": 0.88}]
    # the first epoch below 0.9: gram seed 0 at 1.5, seed 1 never, pairwise at once
    assert flat_exits(curves) == {"gram": {0: 1.5, 1: None}, "pairwise": {0: 0.5}}
    assert flat_exits(curves, threshold=0.96) == {"gram": {0: 1.0, 1: None}, "pairwise": {0: 0.5}}
    back = json.loads(json.dumps(curves))  # as notebook 03 reads the committed file: seeds become strings
    assert flat_exits(back) == flat_exits(curves)
    rows = {r["variant"]: r for r in flat_exit_rows(curves)}
    assert rows["gram"]["left at epoch (per seed)"] == "1.50, never" and rows["gram"]["stayed"] == 1
    assert rows["gram"]["mean"] == "1.50" and rows["pairwise"]["mean"] == "0.50"
    assert list(study_curves(tmp_path, ["pairwise"])["runs"]) == ["pairwise"]


def test_runs_still_training_are_left_out_unless_asked_for(tmp_path):
    _study(tmp_path, LOGS)
    (tmp_path / "gram" / "seed-1" / "result.json").unlink()  # seed 1 still training (or killed)
    assert sorted(study_curves(tmp_path)["runs"]["gram"]) == [0]
    assert sorted(study_curves(tmp_path, finished_only=False)["runs"]["gram"]) == [0, 1]
    (tmp_path / "gram" / "seed-2").mkdir()
    (tmp_path / "gram" / "seed-2" / "log.jsonl").write_text("")  # just started: nothing logged yet
    assert sorted(study_curves(tmp_path, finished_only=False)["runs"]["gram"]) == [0, 1]
    (tmp_path / "pairwise" / "seed-0" / "result.json").unlink()
    assert list(study_curves(tmp_path)["runs"]) == ["gram"]


def test_bad_logs_and_empty_studies_are_named(tmp_path):
    with pytest.raises(ValueError, match="no run with a log"):
        study_curves(tmp_path)
    _study(tmp_path, {("gram", 0): [{"step": 1, "epoch": 0.1, "geom/batch_pos_volume": 0.9}]})
    with open(tmp_path / "gram" / "seed-0" / "log.jsonl", "a") as f:
        f.write("{not json\n")
    with pytest.raises(ValueError, match=r"seed-0/log.jsonl, line 2: not valid JSON"):
        study_curves(tmp_path)


def test_the_collapse_figure_draws_one_line_per_seed_and_panel(tmp_path):
    pytest.importorskip("plotly")
    from gramviz.viz.study import collapse_curves

    curves = json.loads(json.dumps(study_curves(_study(tmp_path, LOGS))))
    fig = collapse_curves(curves, keys=("geom/batch_pos_volume", "val/geom/pos_volume_std"))
    drawn = [(t.meta["variant"], t.meta["seed"], t.yaxis) for t in fig.data]
    # gram seed 0 has both statistics, seed 1 and pairwise only the batch's
    assert drawn == [("gram", "0", "y"), ("gram", "0", "y2"), ("gram", "1", "y"), ("pairwise", "0", "y")]
    assert list(fig.data[0].y) == [0.99123, 0.95, 0.85] and list(fig.data[1].x) == [1]
    assert [t.showlegend for t in fig.data] == [True, False, False, True]  # one legend entry per variant
    assert fig.data[0].line.color == fig.data[2].line.color != fig.data[3].line.color
    with pytest.raises(ValueError, match="unknown variants"):
        collapse_curves(curves, variants=["fused"])
    with pytest.raises(ValueError, match="non-empty 'runs'"):
        collapse_curves({"runs": {}})
