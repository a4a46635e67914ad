"""`gramviz embed` at scale: torchrun ranks, resumable parts, DataLoader workers, autocast on CUDA.

Every run embeds a 12-clip generated world with the bundled model in batches of 2 clips and parts
of 2 batches (3 parts of 4 clips), so that sharing, resuming and merging all happen on a tiny set.
"""

import copy
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import gramviz
from gramviz.cli import main
from gramviz.datasets import ClipDataset
from gramviz.evaluation import embed_dataset, open_dataset
from gramviz.evaluation.embedding import amp_context, autocast_dtype
from gramviz.evaluation.sharded import dataset_fingerprint, embed_to_file, parts_folder
from gramviz.models import model_fingerprint

REPO = Path(__file__).resolve().parents[1]
PARTS = {"batch_size": 2, "batches_per_part": 2, "progress": False, "model_name": "world-small"}  # 3 parts
PARTS_ARGS = ["--batch-size", "2", "--batches-per-part", "2"]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    out = tmp_path_factory.mktemp("world")
    return gramviz.world.generate(out, n=12, seed=3, split="test", workers=1, progress=False, frames=8, size=32)


@pytest.fixture(scope="module")
def model():
    return gramviz.load_model("world-small")


@pytest.fixture(scope="module")
def reference(world, tmp_path_factory):
    """The file of a single-process, uninterrupted `gramviz embed` without DataLoader workers."""
    out = tmp_path_factory.mktemp("reference") / "emb.safetensors"
    args = ["embed", "--model", "world-small", "--data", str(world), "--out", str(out), "--workers", "0", "--quiet"]
    assert main([*args, *PARTS_ARGS]) == 0
    return out


def embed_args(world: Path, out: Path, *more: str) -> list[str]:
    return ["embed", "--model", "world-small", "--data", str(world), "--out", str(out), *PARTS_ARGS, *more]


def assert_same_file(path: Path, reference: Path) -> None:
    """Every tensor equal to 1e-6 and the metadata equal, and no parts left behind."""
    emb, meta = gramviz.load_embeddings(path)
    ref, ref_meta = gramviz.load_embeddings(reference)
    assert meta == ref_meta
    assert set(emb) == set(ref) == {"text", "video", "audio"}
    for m in ref:
        assert emb[m].dtype == torch.float32
        torch.testing.assert_close(emb[m], ref[m], atol=1e-6, rtol=0)
    assert not parts_folder(path).exists()


def count_clips(monkeypatch, model) -> list[int]:
    """Record the number of clips of every video batch the model encodes."""
    seen, real = [], model.encode

    def encode(batch, **kwargs):
        if "video" in batch:
            seen.append(len(batch["video"]))
        return real(batch, **kwargs)

    monkeypatch.setattr(model, "encode", encode)
    return seen


def test_the_single_process_file_is_what_embed_dataset_returns(world, model, reference, capsys):
    emb, meta = gramviz.load_embeddings(reference)
    # an independent reference: the one-pass, in-memory library function (with DataLoader workers)
    direct, direct_meta = embed_dataset(model, open_dataset(world, model), batch_size=2, progress=False, workers=2)
    direct_meta.model = "world-small"
    assert meta == direct_meta and len(meta.ids) == 12 and len(meta.captions) == 36
    for m in direct:
        torch.testing.assert_close(emb[m], direct[m], atol=1e-6, rtol=0)
    torch.testing.assert_close(emb["text"], model.encode_text(meta.captions), atol=1e-5, rtol=0)
    assert not parts_folder(reference).exists()  # the parts are removed after the merge


def test_torchrun_with_two_processes_writes_the_single_process_file(world, reference, tmp_path):
    out = tmp_path / "ddp.safetensors"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "gramviz",
           *embed_args(world, out, "--device", "cpu", "--workers", "1")]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count(f"wrote 12 clips and 36 captions to {out}") == 1  # rank 0 alone writes and says so
    assert "rank 0 of 2" in proc.stderr  # the progress bar
    assert_same_file(out, reference)


def test_an_interrupted_run_resumes_from_its_parts_without_embedding_them_again(world, model, reference, tmp_path,
                                                                                monkeypatch):
    out, dataset = tmp_path / "emb.safetensors", open_dataset(world, model)
    seen = count_clips(monkeypatch, model)
    run = embed_to_file(model, dataset, out, **PARTS, stop_after=1)  # "killed" after one part
    assert (run.parts, run.reused, run.written, run.merged) == (3, 0, 1, False)
    assert sum(seen) == 4 and not out.exists()
    assert sorted(p.name for p in run.work_dir.glob("part-*")) == ["part-000000.safetensors"]

    seen.clear()
    notes = []
    run = embed_to_file(model, dataset, out, **PARTS, log=notes.append)
    assert (run.reused, run.written, run.merged, run.clips, run.captions) == (1, 2, True, 12, 36)
    assert seen == [2, 2, 2, 2]  # the 8 clips of parts 1 and 2 only
    assert notes == [f"resuming: 1 of 3 parts already written in {run.work_dir}"]
    assert_same_file(out, reference)


def test_the_same_command_run_again_continues_where_it_stopped(world, model, reference, tmp_path, capsys):
    out = tmp_path / "emb.safetensors"
    embed_to_file(model, open_dataset(world, model), out, **PARTS, stop_after=2)
    assert main(embed_args(world, out, "--workers", "0")) == 0  # the CLI loads the same model itself
    captured = capsys.readouterr()
    assert "resuming: 2 of 3 parts already written" in captured.err
    assert f"wrote 12 clips and 36 captions to {out}" in captured.out
    assert_same_file(out, reference)


def test_parts_of_another_model_or_dataset_are_never_reused(world, model, reference, tmp_path, monkeypatch):
    out, dataset = tmp_path / "emb.safetensors", open_dataset(world, model)
    other = copy.deepcopy(model)
    with torch.no_grad():
        next(other.parameters()).add_(0.01)
    fewer = ClipDataset(dataset.records[:8], dataset.settings)  # 8 of the 12 clips
    assert model_fingerprint(other) != model_fingerprint(model)
    assert dataset_fingerprint(fewer) != dataset_fingerprint(dataset) == dataset_fingerprint(open_dataset(world, model))
    foreign = embed_to_file(other, dataset, out, **PARTS, stop_after=1)
    embed_to_file(model, fewer, out, **PARTS, stop_after=1)
    mine = embed_to_file(model, dataset, out, **PARTS, stop_after=0)  # this run's folder, empty
    assert len({foreign.work_dir, mine.work_dir} | {p for p in parts_folder(out).iterdir()}) == 3
    # a part of the other model copied into this run's folder is not taken either (each part holds its key)
    shutil.copy(foreign.work_dir / "part-000000.safetensors", mine.work_dir / "part-000000.safetensors")

    seen, notes = count_clips(monkeypatch, model), []
    run = embed_to_file(model, dataset, out, **PARTS, log=notes.append)
    assert (run.reused, run.written, run.merged) == (0, 3, True) and sum(seen) == 12  # a fresh start
    assert len(notes) == 1 and notes[0].startswith("ignoring the parts in") and "starting afresh" in notes[0]
    assert_same_file(out, reference)


def test_a_changed_media_file_changes_the_datasets_fingerprint(world, model, tmp_path):
    copied = shutil.copytree(world, tmp_path / "world")
    before = dataset_fingerprint(open_dataset(copied, model))
    video = next((copied / "videos").iterdir())
    os.utime(video, ns=(video.stat().st_atime_ns, video.stat().st_mtime_ns + 10**9))
    assert dataset_fingerprint(open_dataset(copied, model)) != before


def test_decoding_in_two_worker_processes_gives_the_same_file(world, reference, tmp_path):
    out = tmp_path / "emb.safetensors"
    assert main(embed_args(world, out, "--workers", "2", "--quiet")) == 0
    assert_same_file(out, reference)


def test_bad_settings_are_refused_with_the_option_named(world, tmp_path, capsys):
    for bad, word in ((["--workers", "-1"], "workers"), (["--batches-per-part", "0"], "batches_per_part")):
        with pytest.raises(SystemExit) as e:
            main(embed_args(world, tmp_path / "x.safetensors", "--quiet", *bad))
        assert e.value.code == 2 and word in capsys.readouterr().err


def test_autocast_is_used_on_cuda_only_in_bf16_else_fp16(world, model, monkeypatch):
    cpu, cuda = torch.device("cpu"), torch.device("cuda", 0)
    assert autocast_dtype(cpu, True) is None and autocast_dtype(cuda, False) is None
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert autocast_dtype(cuda, True) is torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert autocast_dtype(cuda, True) is torch.float16
    with amp_context(cpu, True):
        assert not torch.is_autocast_enabled("cpu")  # CPU runs are unchanged


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_amp_on_cuda_stores_float32_embeddings_close_to_full_precision(world, model):
    gpu = copy.deepcopy(model).cuda()
    dataset = open_dataset(world, gpu)
    full, _ = embed_dataset(gpu, dataset, batch_size=4, progress=False)
    mixed, _ = embed_dataset(gpu, dataset, batch_size=4, progress=False, amp=True)
    for m in full:
        assert mixed[m].dtype == torch.float32 and not torch.equal(mixed[m], full[m])
        assert F.cosine_similarity(mixed[m], full[m], dim=1).min() > 0.99
