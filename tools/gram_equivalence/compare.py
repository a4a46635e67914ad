"""Compare gramviz's conversion of the tiny official GRAM model with the official outputs.

Runs in gramviz's OWN environment. Reads what ``build_official.py`` wrote under ``--out``:

1. converts ``--out`` (``ckpt/model_step_7.pt``, ``log/hps.json``) with ``gramviz convert-gram``
   into ``--out``/converted, giving the tiny BERT vocabulary as ``--tokenizer`` and the head sizes
   that no tensor shape records (``--vision-head-width``, ``--text-heads``);
2. loads it with ``gramviz.load_model`` and feeds the SAME preprocessed tensors the official model
   saw (caption ids and mask, CLIP-normalised frames, normalised fbank): through the public
   ``GRAMModel.encode`` (inputs wrapped in ``Prepared``, so no file decoding) for ``feat_t``,
   ``feat_v``, ``feat_a`` (L2-normalised, as the official ones), and through each tower for the
   intermediate tensors (token outputs, pooled features), to localise a difference;
3. runs ``encode`` twice (``torch.equal``), and checks gramviz's tokenisation of the captions;
4. when ``preprocess_official.py`` has run: compares the official ``VisionMapper.read`` /
   ``AudioMapper.read`` (evaluation rule) with ``read_official_frames`` / ``read_official_audio`` +
   ``official_fbank`` on the same files.

Prints the tables, writes ``--out``/compare.json, and exits 1 if a feature misses the goal
(maximum absolute difference below ``--atol``, 1e-5, in float32) or two runs differ.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, type=Path, help="the folder build_official.py wrote")
    p.add_argument("--converted", type=Path, help="the gramviz model folder (default OUT/converted)")
    p.add_argument("--no-convert", action="store_true", help="reuse an existing converted folder")
    p.add_argument("--atol", type=float, default=1e-5, help="goal for the features' maximum difference")
    p.add_argument("--sensitivity", action="store_true",
                   help="also convert with wrong shape-less settings and show that the comparison sees them")
    return p.parse_args()


def convert(out: Path, converted: Path, info: dict) -> list[str]:
    """``gramviz convert-gram`` through the CLI, as a user runs it."""
    sizes = info["sizes"]
    cmd = [sys.executable, "-m", "gramviz", "convert-gram", str(out), "--out", str(converted),
           "--tokenizer", str(out / "tokenizer"), "--vision-head-width", str(sizes["eva_head_width"]),
           "--text-heads", str(sizes["bert_heads"])]
    print("$", " ".join(cmd[1:]))
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    print((done.stdout + done.stderr).strip())
    if done.returncode:
        raise SystemExit(f"conversion failed (exit {done.returncode})")
    return cmd


@torch.no_grad()
def gramviz_outputs(model, ref: dict) -> dict:
    """The official quantities, computed by the converted model on the official inputs."""
    from gramviz.models.gram_official.towers import Prepared

    ids, mask = ref["input.input_ids"], ref["input.attention_mask"]
    pixels = ref["input.vision_pixels"]  # (B, T, 3, s, s), CLIP-normalised
    fbank = ref["input.audio_spectrograms"][:, 0]  # (B, 1, 1024, mel) -> one slice per clip
    feats = model.encode({"text": (ids, mask), "video": Prepared(pixels), "audio": Prepared(fbank)})
    enc = model.encoders
    b, t = pixels.shape[:2]
    text_tokens = enc["text"].bert(input_ids=ids, attention_mask=mask).last_hidden_state
    vision_cls = enc["video"].visual(pixels.flatten(0, 1))[:, 0].reshape(b, t, -1)
    audio_tokens = enc["audio"].beats(fbank)
    return {"text_tokens": text_tokens, "pooled_t": text_tokens[:, 0],
            "vision_cls": vision_cls, "pooled_v": vision_cls.mean(dim=1),
            "audio_tokens": audio_tokens.unsqueeze(1), "pooled_a": audio_tokens.mean(dim=1),
            "feat_t": feats["text"], "feat_v": feats["video"], "feat_a": feats["audio"]}


def diff_rows(ours: dict, ref: dict, prefix: str) -> list[dict]:
    rows = []
    for name, value in ours.items():
        official = ref[f"{prefix}{name}"]
        if tuple(value.shape) != tuple(official.shape):
            rows.append({"quantity": name, "shape": list(official.shape), "gramviz_shape": list(value.shape),
                         "max_abs_diff": float("nan"), "max_abs_official": float(official.abs().max())})
            continue
        d = (value.float() - official.float()).abs()
        rows.append({"quantity": name, "shape": list(official.shape), "max_abs_diff": float(d.max()),
                     "mean_abs_diff": float(d.mean()), "max_abs_official": float(official.abs().max())})
    return rows


def print_table(title: str, rows: list[dict], extra: str = "") -> None:
    print(f"\n{title}")
    print(f"| quantity | shape | max abs diff | mean abs diff | max abs value |{extra and ' ' + extra + ' |'}")
    print(f"|---|---|---|---|---|{extra and '---|'}")
    for r in rows:
        tail = f" {r.get('note', '')} |" if extra else ""
        print(f"| {r['quantity']} | {tuple(r['shape'])} | {r['max_abs_diff']:.3g} | "
              f"{r.get('mean_abs_diff', float('nan')):.3g} | {r['max_abs_official']:.3g} |{tail}")


def check_tokens(model, ref: dict, captions: list[str]) -> dict:
    """gramviz's tokenisation of the captions against the official ids and mask."""
    from gramviz.models.gram_official.preprocess import official_text
    tokenizer = model.encoders["text"].tokenizer
    ids, mask = official_text(getattr(tokenizer, "tokenizer", tokenizer), captions, ref["input.input_ids"].shape[1])
    return {"input_ids_equal": torch.equal(ids.long(), ref["input.input_ids"].long()),
            "attention_mask_equal": torch.equal(mask.long(), ref["input.attention_mask"].long())}


def compare_preprocessing(out: Path) -> list[dict]:
    """Official mappers (preprocess_official.py) against gramviz's readers, file by file."""
    from gramviz.models.gram_official.preprocess import (
        official_fbank,
        read_official_audio,
        read_official_frames,
    )

    folder = out / "preprocess"
    if not (folder / "official.safetensors").is_file():
        return []
    ref = load_file(str(folder / "official.safetensors"))
    meta = json.loads((folder / "official.json").read_text())
    rows = []
    for key, path in meta["files"].items():
        kind = key.split(".", 1)[0]
        official = ref[key]
        try:
            if kind == "video":
                ours = read_official_frames(path, meta["frames"], meta["size"])
            else:
                wave, rate = read_official_audio(path)
                ours = official_fbank(wave, rate, meta["melbins"], meta["target_length"]).unsqueeze(0)
        except Exception as e:  # noqa: BLE001 (reported, not fatal: decoding is not the model)
            rows.append({"quantity": key, "shape": list(official.shape), "max_abs_diff": float("nan"),
                         "max_abs_official": float(official.abs().max()), "note": f"{type(e).__name__}: {e}"})
            continue
        if tuple(ours.shape) != tuple(official.shape):
            rows.append({"quantity": key, "shape": list(official.shape), "max_abs_diff": float("nan"),
                         "max_abs_official": float(official.abs().max()),
                         "note": f"gramviz shape {tuple(ours.shape)}"})
            continue
        d = (ours.float() - official).abs()
        note = Path(path).name
        if kind == "video":  # in 8-bit levels: normalised difference times the channel std times 255
            std = torch.tensor((0.26862954, 0.26130258, 0.27577711)).view(1, 3, 1, 1)
            levels = d * std * 255
            note += f"; max {float(levels.max()):.2f} levels, {float((levels > 0.5).float().mean()) * 100:.2f}% of values > 0.5 level"
        rows.append({"quantity": key, "shape": list(official.shape), "max_abs_diff": float(d.max()),
                     "mean_abs_diff": float(d.mean()), "max_abs_official": float(official.abs().max()), "note": note})
    for key, why in meta.get("skipped", {}).items():
        rows.append({"quantity": key, "shape": [], "max_abs_diff": float("nan"), "max_abs_official": float("nan"),
                     "note": f"the official reader failed: {why.splitlines()[0][:80]}"})
    return rows


@torch.no_grad()
def sensitivity(out: Path, ref: dict, info: dict) -> list[dict]:
    """The features' difference when a setting that no tensor shape records is wrong."""
    import tempfile

    import gramviz
    from gramviz.models import convert_gram
    from gramviz.models.gram_official.towers import Prepared

    sizes = info["sizes"]
    cases = [("BEATs max_distance 1280 (BEATsConfig's original default)", {"beats": {"max_distance": 1280}}, "audio"),
             ("BEATs deep_norm False", {"beats": {"deep_norm": False}}, "audio"),
             ("EVA head width x2", {"vision_head_width": 2 * sizes["eva_head_width"]}, "video"),
             ("BERT heads / 2", {"text_heads": sizes["bert_heads"] // 2}, "text")]
    inputs = {"text": (ref["input.input_ids"], ref["input.attention_mask"]),
              "video": Prepared(ref["input.vision_pixels"]), "audio": Prepared(ref["input.audio_spectrograms"][:, 0])}
    official = {"text": "feat_t", "video": "feat_v", "audio": "feat_a"}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, change, m in cases:
            kwargs = {"vision_head_width": sizes["eva_head_width"], "text_heads": sizes["bert_heads"], **change}
            model = gramviz.load_model(convert_gram(out, Path(tmp) / "m", tokenizer=out / "tokenizer", **kwargs))
            feat = model.encode({m: inputs[m]})[m]
            rows.append({"setting": label, "feature": official[m],
                         "max_abs_diff": float((feat - ref[f"official.{official[m]}"]).abs().max())})
    return rows


def versions() -> dict:
    import transformers

    import gramviz
    return {"python": sys.version.split()[0], "torch": torch.__version__, "transformers": transformers.__version__,
            "gramviz": getattr(gramviz, "__version__", "?")}


def main() -> None:
    a = parse_args()
    out = a.out.resolve()
    converted = (a.converted or out / "converted").resolve()
    info = json.loads((out / "reference.json").read_text())
    ref = load_file(str(out / "reference.safetensors"))
    torch.manual_seed(0)

    cmd = None if a.no_convert else convert(out, converted, info)
    import gramviz
    model = gramviz.load_model(converted)
    model.eval()
    first = gramviz_outputs(model, ref)
    second = gramviz_outputs(model, ref)
    rows = diff_rows(first, ref, "official.")
    identical = {k: torch.equal(first[k], second[k]) for k in ("feat_t", "feat_v", "feat_a")}
    tokens = check_tokens(model, ref, info["captions"])
    prep = compare_preprocessing(out)

    print(f"\nofficial: GRAM @ {info.get('gram_commit', 'b70c5c2')}, {info['versions']}; gramviz: {versions()}")
    print_table("Official GRAM (eval mode) vs gramviz convert-gram, same preprocessed inputs, float32", rows)
    print(f"\ntwo gramviz runs identical (torch.equal): {identical}; official two runs identical: "
          f"{info['official_deterministic']}")
    print(f"gramviz tokenisation of the captions equals the official: {tokens}")
    if prep:
        print_table("Preprocessing: official VisionMapper/AudioMapper.read (training=False) vs gramviz readers",
                    prep, extra="file / note")

    sens = sensitivity(out, ref, info) if a.sensitivity else []
    if sens:
        print("\nSensitivity: the same comparison with one shape-less setting wrong")
        print("| wrong setting | feature | max abs diff |\n|---|---|---|")
        for r in sens:
            print(f"| {r['setting']} | {r['feature']} | {r['max_abs_diff']:.3g} |")

    feats = {r["quantity"]: r["max_abs_diff"] for r in rows if r["quantity"].startswith("feat_")}
    ok = all(v < a.atol for v in feats.values()) and all(identical.values())  # NaN (shape) fails
    result = {"goal_atol": a.atol, "passed": ok, "features": feats, "rows": rows, "deterministic": identical,
              "official_deterministic": info["official_deterministic"], "tokenisation": tokens,
              "preprocessing": prep, "sensitivity": sens, "convert_command": cmd and cmd[1:], "versions": {"gramviz_env": versions(),
              "reference_env": info["versions"]}}
    (out / "compare.json").write_text(json.dumps(result, indent=1))
    print("\n" + ("PASS" if ok else "FAIL") + f": max |feat diff| {feats} (goal < {a.atol:g}); wrote {out}/compare.json")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
