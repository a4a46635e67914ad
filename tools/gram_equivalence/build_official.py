"""Build the official GRAM model at tiny size, fill it with random weights, save it in the official
checkpoint layout and record its evaluation-mode embeddings on fixed inputs.

Runs in the REFERENCE environment (torch 2.0.1, transformers 4.31.0, see requirements.txt) and
imports the official code from a checkout of ispamm/GRAM (``--gram``). Nothing of gramviz is
imported here.

The official constructors load pretrained towers from ``./pretrained_weights`` (EVA01-CLIP-g,
BEATs iter3+, bert-base-uncased). Three methods are replaced so that the same classes are built at
tiny size without those files:

- ``MMGeneralModule.load_clip_model``: the official ``create_model`` with a tiny EVA01-CLIP config
  registered through ``add_model_config`` (same JSON keys as ``EVA01-CLIP-g-14.json``);
- ``MMGeneralModule.load_beats_model``: the official ``BEATs(BEATsConfig(cfg))`` with the iter3+
  flags and tiny sizes, without ``torch.load``;
- ``GRAM.construct_multimodal_encoder``: the official method (custom ``BertForMaskedLM`` read from
  ``./pretrained_weights/bert/bert-base-uncased``, which this script writes at tiny size), then
  ``multimodal_dim`` set to the tiny hidden size (the official code hard-codes 768).

Writes under ``--out``:
    ckpt/model_step_7.pt     every state-dict tensor, random, keys prefixed ``module.``
    log/hps.json             {run_cfg, model_cfg, data_cfg, local_rank}, as utils/args.py writes it
    tokenizer/               the tiny BERT vocabulary (for ``gramviz convert-gram --tokenizer``)
    reference.safetensors    inputs and the official outputs (see ``main``)
    reference.json           sizes, captions and what was checked
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

# Same semantics as the official constants (utils_for_fast_inference.py, VisionMapper).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
CAPTIONS = [
    "a man is playing a guitar on the stage",
    "a dog runs in the park while children play",
    "the woman cooks food in the kitchen and talks about the recipe " * 4,  # longer than 40 tokens
    "zebra xylophone",  # words outside the tiny vocabulary
]
VOCAB_WORDS = ("a", "an", "the", "is", "are", "on", "in", "of", "and", "while", "to", "about",
               "man", "woman", "dog", "children", "play", "playing", "runs", "guitar", "stage",
               "park", "cooks", "food", "kitchen", "talks", "recipe", "music", "car", "water")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--gram", required=True, type=Path, help="checkout of ispamm/GRAM (b70c5c2)")
    p.add_argument("--out", required=True, type=Path, help="output folder (created)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--frames", type=int, default=8, help="frames per clip in the fixed inputs")
    # Sizes. No tensor shape records EVA's head width or BERT's head count: compare.py passes them
    # to the converter (--vision-head-width, --text-heads) from reference.json.
    p.add_argument("--eva-width", type=int, default=64)
    p.add_argument("--eva-head-width", type=int, default=16)
    p.add_argument("--eva-layers", type=int, default=2)
    p.add_argument("--image-size", type=int, default=28)
    p.add_argument("--bert-hidden", type=int, default=64)
    p.add_argument("--bert-heads", type=int, default=4)
    p.add_argument("--bert-layers", type=int, default=2)
    p.add_argument("--beats-width", type=int, default=64)
    p.add_argument("--beats-heads", type=int, default=4)
    p.add_argument("--beats-layers", type=int, default=2)
    return p.parse_args()


def tiny_beats_cfg(a: argparse.Namespace) -> dict:
    """BEATs iter3+ (AS2M) settings with tiny sizes; the flags are those the note expects."""
    return {"input_patch_size": 16, "embed_dim": a.beats_width // 2, "conv_bias": False,
            "encoder_layers": a.beats_layers, "encoder_embed_dim": a.beats_width,
            "encoder_ffn_embed_dim": 2 * a.beats_width, "encoder_attention_heads": a.beats_heads,
            "activation_fn": "gelu", "layer_wise_gradient_decay_ratio": 1.0, "layer_norm_first": False,
            "deep_norm": True, "dropout": 0.0, "attention_dropout": 0.0, "activation_dropout": 0.0,
            "encoder_layerdrop": 0.05, "dropout_input": 0.0, "conv_pos": 128, "conv_pos_groups": 16,
            "relative_position_embedding": True, "num_buckets": 320, "max_distance": 800, "gru_rel_pos": True,
            "finetuned_model": False}


def tiny_eva_config(a: argparse.Namespace) -> dict:
    """EVA01-CLIP-g-14.json with tiny sizes (same keys; xattn/fusedLN kept: the code ignores them)."""
    return {"embed_dim": 32,
            "vision_cfg": {"image_size": a.image_size, "layers": a.eva_layers, "width": a.eva_width,
                           "head_width": a.eva_head_width, "mlp_ratio": 4.3637, "patch_size": 14,
                           "eva_model_name": "eva-clip-tiny-14-x", "drop_path_rate": 0.4,
                           "xattn": True, "fusedLN": True},
            "text_cfg": {"context_length": 16, "vocab_size": 64, "width": 32, "heads": 2, "layers": 1,
                         "xattn": False, "fusedLN": True}}


def write_tiny_bert(bert_dir: Path, a: argparse.Namespace) -> None:
    """config.json + weights + vocab.txt of a tiny bert-base-uncased stand-in."""
    from model.text_encoders.bert.bert import BertForMaskedLM
    from transformers import BertConfig, BertTokenizer

    bert_dir.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *VOCAB_WORDS,
             *"abcdefghijklmnopqrstuvwxyz", *("##" + c for c in "abcdefghijklmnopqrstuvwxyz"), ".", ","]
    vocab = list(dict.fromkeys(vocab))  # "a" is a word and a letter
    (bert_dir / "vocab.txt").write_text("\n".join(vocab) + "\n")
    cfg = BertConfig(vocab_size=len(vocab), hidden_size=a.bert_hidden, num_hidden_layers=a.bert_layers,
                     num_attention_heads=a.bert_heads, intermediate_size=2 * a.bert_hidden,
                     max_position_embeddings=64, pad_token_id=0)
    BertForMaskedLM(cfg).save_pretrained(str(bert_dir))
    BertTokenizer(str(bert_dir / "vocab.txt"), do_lower_case=True).save_pretrained(str(bert_dir))


def patch_official(a: argparse.Namespace, work: Path) -> None:
    """Replace the three pretrained-loading methods by tiny constructions of the same classes."""
    from model.general_module import MMGeneralModule
    from model.gram import GRAM

    eva_json = work / "EVA01-CLIP-tiny-14.json"
    eva_json.write_text(json.dumps(tiny_eva_config(a), indent=1))

    def load_clip_model(self):
        from model.vision_encoders.evaclip import add_model_config, create_model
        add_model_config(eva_json)
        self.vision_encoder = create_model("EVA01-CLIP-tiny-14", None, force_custom_clip=True,
                                           image_size=self.config.vision_resolution)
        self.vision_dim = a.eva_width

    def load_beats_model(self):
        from model.audio_encoders.beats.beats import BEATs, BEATsConfig
        self.audio_encoder = BEATs(BEATsConfig(tiny_beats_cfg(a)), checkpointing=self.config.checkpointing)
        self.audio_dim = a.beats_width

    official_construct = GRAM.construct_multimodal_encoder

    def construct_multimodal_encoder(self):
        official_construct(self)
        self.multimodal_dim = self.multimodal_encoder.config.hidden_size

    MMGeneralModule.load_clip_model = load_clip_model
    MMGeneralModule.load_beats_model = load_beats_model
    GRAM.construct_multimodal_encoder = construct_multimodal_encoder


def model_cfg(gram: Path, a: argparse.Namespace):
    from easydict import EasyDict as edict
    cfg = json.loads((gram / "config/gram/default_model_cfg.json").read_text())
    cfg.update(max_vision_sample_num=8, max_audio_sample_num=1, vision_resolution=a.image_size)
    return edict(cfg)


def randomize(state: dict, gen: torch.Generator) -> tuple[dict, list[str], dict[str, str]]:
    """A random value for every floating-point tensor (integer buffers kept, and returned).

    Scales keep activations of order one: weights ~ N(0, 1/fan_in), biases and embeddings of a few
    tenths, LayerNorm weights around 1, gates and weight-norm gains away from their initial values.
    Keys that name one tensor of the model get one value (returned as alias -> first key): the
    relative position bias table that all BEATs layers share, and BERT's word embeddings tied to
    the masked-LM decoder. They are saved as separate copies, as a checkpoint saved from GPU
    tensors holds them; random values that differed would be loaded last-one-wins.
    """
    def randn(shape, scale=1.0, shift=0.0):
        return torch.randn(shape, generator=gen) * scale + shift

    out, kept, aliases, first_of = {}, [], {}, {}
    for k, v in state.items():
        ident = (v.untyped_storage().data_ptr(), v.storage_offset(), tuple(v.shape), tuple(v.stride()))
        if ident in first_of:
            out[k] = out[first_of[ident]].clone()
            aliases[k] = first_of[ident]
            continue
        first_of[ident] = k
        if not v.is_floating_point():
            out[k] = v.clone()
            kept.append(k)
            continue
        s, parent = tuple(v.shape), (k.split(".")[-2:-1] or [""])[0]
        if k.endswith("relative_attention_bias.weight"):
            new = randn(s, 1.0)
        elif k.endswith("weight_g"):
            new = randn(s, 0.3).abs() + 0.5
        elif k.endswith("grep_a"):
            new = torch.rand(s, generator=gen) + 0.5
        elif k.endswith(("q_bias", "v_bias")):
            new = randn(s, 0.3)
        elif "norm" in parent.lower() and k.endswith(".weight"):
            new = randn(s, 0.2, 1.0)
        elif v.dim() >= 2 and not k.endswith(("embeddings.weight", "pos_embed", "cls_token")) \
                and "embedding" not in k.split(".")[-1]:
            fan_in = v[0].numel()
            new = randn(s, fan_in ** -0.5)
        else:  # biases, embeddings, tokens, scalars
            new = randn(s, 0.3 if v.dim() <= 1 else 0.5)
        out[k] = new.to(v.dtype)
    return out, kept, aliases


def official_load(model, out: Path) -> None:
    """utils/build_model.py:41-49 on the CPU: newest model_step_N.pt, strip 'module.', modify, load."""
    from easydict import EasyDict as edict
    from utils.build_model import load_from_pretrained_dir
    checkpoint = load_from_pretrained_dir(edict(run_cfg=edict(pretrain_dir=str(out))))
    checkpoint = {k.replace("module.", ""): v for k, v in checkpoint.items()}
    checkpoint = model.modify_checkpoint(checkpoint)
    missing, unexpected = model.load_state_dict(checkpoint, strict=False)
    if missing or unexpected:
        raise SystemExit(f"the official loader reports missing {missing} / unexpected {unexpected}")


def fixed_inputs(tokenizer, a: argparse.Namespace, gen: torch.Generator) -> dict:
    """Captions tokenized as gram.py:91-95 does; frames and fbank as the mappers deliver them."""
    tokens = tokenizer(CAPTIONS, padding="max_length", truncation=True, max_length=40, return_tensors="pt")
    b = len(CAPTIONS)
    pixels = torch.randint(0, 256, (b, a.frames, 3, a.image_size, a.image_size), generator=gen) / 255.0
    mean, std = torch.tensor(CLIP_MEAN).view(3, 1, 1), torch.tensor(CLIP_STD).view(3, 1, 1)
    pixels = ((pixels - mean) / std).float()
    # normalised fbank values ((f - 15.41663) / (2 * 6.55582)) span about -1.5..1; the last clip
    # ends with zero padding, as a clip shorter than 10.24 s does.
    fbank = torch.randn(b, 1, 1024, 64, generator=gen) * 0.5 - 0.3
    fbank[-1, :, 700:] = 0.0
    return {"input_ids": tokens.input_ids, "attention_mask": tokens.attention_mask,
            "token_type_ids": tokens.token_type_ids, "vision_pixels": pixels, "audio_spectrograms": fbank}


@torch.no_grad()
def official_outputs(model, inputs: dict) -> dict:
    """batch_get for the three features (gram.py:242-275), caption tokens pre-filled (no .cuda())."""
    from easydict import EasyDict as edict
    from transformers.tokenization_utils_base import BatchEncoding
    batch = edict(vision_pixels=inputs["vision_pixels"], audio_spectrograms=inputs["audio_spectrograms"])
    batch["caption_tokens"] = BatchEncoding({"input_ids": inputs["input_ids"],
                                             "attention_mask": inputs["attention_mask"]})
    feats = {k: model.batch_get(batch, k) for k in ("feat_t", "feat_v", "feat_a")}
    pooled = {"pooled_t": model.pool_text_for_contra(batch["caption_output"]),
              "pooled_v": model.pool_vision_for_contra(batch["vision_output"]),
              "pooled_a": model.pool_audio_for_contra(batch["audio_output"])}
    return {**feats, **pooled, "vision_cls": batch["vision_output"][:, :, 0],
            "audio_tokens": batch["audio_output"], "text_tokens": batch["caption_output"]}


def main() -> None:
    a = parse_args()
    gram, out = a.gram.resolve(), a.out.resolve()
    sys.path.insert(0, str(gram))
    torch.manual_seed(a.seed)
    gen = torch.Generator().manual_seed(a.seed)
    out.mkdir(parents=True, exist_ok=True)
    for sub in ("ckpt", "log", "tokenizer", "converted"):
        shutil.rmtree(out / sub, ignore_errors=True)

    with tempfile.TemporaryDirectory(prefix="gram-official-") as tmp:
        work = Path(tmp)
        os.chdir(work)  # the official code reads ./pretrained_weights/...
        bert_dir = work / "pretrained_weights/bert/bert-base-uncased"
        write_tiny_bert(bert_dir, a)
        patch_official(a, work)
        from model.gram import GRAM

        cfg = model_cfg(gram, a)
        model = GRAM(cfg)
        state, kept, aliases = randomize(model.state_dict(), gen)
        (out / "ckpt").mkdir()
        (out / "log").mkdir()
        torch.save({"module." + k: v for k, v in state.items()}, out / "ckpt/model_step_7.pt")
        hps = {"run_cfg": {"pretrain_dir": "", "seed": a.seed},
               "model_cfg": {k: cfg[k] for k in ("model_type", "vision_encoder_type", "audio_encoder_type",
                                                 "audio_melbins", "audio_target_length", "vision_resolution",
                                                 "contra_dim", "max_caption_len")},
               "data_cfg": {}, "local_rank": 0}
        (out / "log/hps.json").write_text(json.dumps(hps, indent=1))
        tok_files = ["vocab.txt", "tokenizer_config.json", "special_tokens_map.json", "config.json"]
        (out / "tokenizer").mkdir()
        for name in tok_files:
            shutil.copy(bert_dir / name, out / "tokenizer" / name)

        # A fresh model, loaded the official way, in evaluation mode.
        model = GRAM(cfg)
        official_load(model, out)
        model.eval()
        inputs = fixed_inputs(model.multimodal_encoder.tokenizer, a, gen)
        first = official_outputs(model, inputs)
        second = official_outputs(model, inputs)
        deterministic = all(torch.equal(first[k], second[k]) for k in first)

    from safetensors.torch import save_file
    tensors = {f"input.{k}": v.contiguous() for k, v in inputs.items()}
    tensors.update({f"official.{k}": v.contiguous() for k, v in first.items()})
    save_file(tensors, str(out / "reference.safetensors"))
    commit = subprocess.run(["git", "-C", str(gram), "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            check=False)
    info = {"captions": CAPTIONS, "seed": a.seed, "gram_commit": commit.stdout.strip() or "unknown (no git)", "kept_integer_buffers": kept, "aliases": aliases,
            "official_deterministic": deterministic, "num_tensors": len(state),
            "sizes": {k: v for k, v in vars(a).items() if k not in ("gram", "out")},
            "beats_cfg": tiny_beats_cfg(a), "eva_config": tiny_eva_config(a),
            "versions": {"torch": torch.__version__, "transformers": __import__("transformers").__version__,
                         "python": sys.version.split()[0]}}
    (out / "reference.json").write_text(json.dumps(info, indent=1))
    print(f"official GRAM (tiny): {len(state)} tensors, random but for {len(kept)} integer buffer(s) {kept}; "
          f"{len(aliases)} keys alias another (same value): {sorted(set(aliases.values()))}")
    print(f"wrote {out}/ckpt/model_step_7.pt, log/hps.json, tokenizer/, reference.safetensors")
    print("feature shapes:", {k: tuple(first[k].shape) for k in ("feat_t", "feat_v", "feat_a")},
          "| two official runs identical:", deterministic)


if __name__ == "__main__":
    main()
