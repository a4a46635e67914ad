"""The gramviz command line, called through main(argv) and as ``python -m gramviz``."""

import json
import subprocess
import sys

import pytest

from gramviz.cli import build_parser, main


def test_world_writes_a_split(tmp_path):
    out = tmp_path / "w"
    argv = ["world", "--n", "5", "--seed", "2", "--split", "train", "--frames", "4", "--out", str(out)]
    assert main(argv + ["--workers", "2", "--quiet", "--coverage", "size=1", "--captions", "2"]) == 0
    lines = (out / "captions.jsonl").read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == [f"train-{i:06d}" for i in range(5)]
    assert all(len(json.loads(line)["captions"]) == 2 for line in lines)
    assert len(list((out / "videos").glob("*.mp4"))) == 5 and len(list((out / "audio").glob("*.wav"))) == 5
    meta = json.loads((out / "world.json").read_text())
    assert (meta["n"], meta["seed"], meta["split"], meta["knobs"]["frames"]) == (5, 2, "train", 4)
    assert meta["knobs"]["coverage"]["size"] == 1.0 and meta["oracle"]["mention_rate"]["size"] == 1.0


def test_world_reports_time_and_oracles(tmp_path, capsys):
    assert main(["world", "--n", "2", "--frames", "2", "--workers", "1", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "wrote 2 clips" in out and "oracle text->clip R@1" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["world", "--n", "0"], "n must be a positive integer"),
        (["world", "--split", "holdout"], "invalid choice"),
        (["world", "--coverage", "size"], "FACTOR=PROBABILITY"),
        (["world", "--coverage", "mood=1"], "unknown factors"),
        (["world", "--frames", "0"], "frames must"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as e:
        main(argv + ["--out", str(tmp_path / "w"), "--quiet"])
    assert e.value.code == 2
    assert message in capsys.readouterr().err


def test_a_subcommand_is_required(capsys):
    with pytest.raises(SystemExit) as e:
        main([])
    assert e.value.code == 2
    assert "world" in build_parser().format_help()


def test_python_dash_m_gramviz():
    result = subprocess.run([sys.executable, "-m", "gramviz", "world", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "--split" in result.stdout
