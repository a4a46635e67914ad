"""Tiny randomly initialised transformers models saved to local directories, loaded back by the
same ``from_pretrained(dir)`` path a downloaded checkpoint takes: a CLIP (text + vision), a CLAP
(text + audio), a BERT-like text model and an AST audio model, each with a small WordPiece
tokenizer made with ``tokenizers`` or its own feature extractor / image processor."""

from __future__ import annotations

from pathlib import Path

import torch

# words of real captions, none of them in the generated world's vocabulary except "a"/"is"
WORDS = ["a", "the", "is", "dog", "cat", "red", "black", "barking", "howling", "meowing", "bird", "sings", "car", "engine", "rain", "falls", "guitar", "piano", "water", "waves", "people", "talking"]
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]


def save_tokenizer(directory: Path, max_len: int = 32) -> int:
    """A WordPiece tokenizer over WORDS plus single letters (so most words are spelled); returns its size."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    chars = "abcdefghijklmnopqrstuvwxyz0123456789"
    pieces = [*SPECIAL, *WORDS, *chars, *(f"##{c}" for c in chars), *".,;:!?'-\"()"]
    vocab = {w: i for i, w in enumerate(dict.fromkeys(pieces))}  # ids 0..n-1, each piece once
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                   sep_token="[SEP]", model_max_length=max_len)
    fast.save_pretrained(directory)
    return len(vocab)


_TEXT = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2)


def tiny_clip(directory: Path, image_size: int = 32, projection: int = 24) -> Path:
    """CLIP with 32-wide text and vision towers (projection 24) and a CLIP image processor."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    n = save_tokenizer(directory)
    torch.manual_seed(1)
    config = CLIPConfig(
        text_config=dict(**_TEXT, vocab_size=n, max_position_embeddings=32, eos_token_id=3, bos_token_id=2, pad_token_id=0),
        vision_config=dict(**_TEXT, image_size=image_size, patch_size=8), projection_dim=projection)
    CLIPModel(config).save_pretrained(directory)
    CLIPImageProcessor(size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size},
                       image_mean=[0.25, 0.5, 0.75], image_std=[0.5, 0.25, 0.125]).save_pretrained(directory)
    return directory


def tiny_clap(directory: Path, projection: int = 24) -> Path:
    """CLAP (unfused HTSAT audio, 16 mel bins, 1 s at 48 kHz) with 32-wide towers, projection 24."""
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel

    n = save_tokenizer(directory)
    torch.manual_seed(2)
    config = ClapConfig(
        text_config=dict(**_TEXT, vocab_size=n, max_position_embeddings=40, pad_token_id=0, type_vocab_size=1),
        audio_config=dict(spec_size=64, patch_size=4, patch_stride=(4, 4), num_mel_bins=16, depths=(1, 1),
                          num_attention_heads=(2, 2), window_size=4, patch_embeds_hidden_size=16, hidden_size=32,
                          enable_fusion=False),
        projection_dim=projection)
    ClapModel(config).save_pretrained(directory)
    ClapFeatureExtractor(feature_size=16, sampling_rate=48000, max_length_s=1, truncation="rand_trunc",
                         padding="repeatpad", fft_window_size=1024, hop_length=960).save_pretrained(directory)
    return directory


def tiny_bert(directory: Path) -> Path:
    """A BERT-like text encoder (mean pooled by gramviz)."""
    from transformers import BertConfig, BertModel

    n = save_tokenizer(directory)
    torch.manual_seed(3)
    BertModel(BertConfig(**_TEXT, vocab_size=n, max_position_embeddings=32)).save_pretrained(directory)
    return directory


def tiny_ast(directory: Path) -> Path:
    """An Audio Spectrogram Transformer at 16 kHz with its feature extractor (16 mel bins, 64 frames)."""
    from transformers import ASTConfig, ASTFeatureExtractor, ASTModel

    torch.manual_seed(4)
    config = ASTConfig(**_TEXT, num_mel_bins=16, max_length=64, patch_size=16, frequency_stride=8, time_stride=8)
    ASTModel(config).save_pretrained(directory)
    ASTFeatureExtractor(feature_size=1, sampling_rate=16000, num_mel_bins=16, max_length=64).save_pretrained(directory)
    return directory


def build_all(root: Path) -> dict[str, Path]:
    """Every tiny model under ``root``: {"clip", "clap", "bert", "ast"} -> its directory."""
    out = {}
    for name, make in (("clip", tiny_clip), ("clap", tiny_clap), ("bert", tiny_bert), ("ast", tiny_ast)):
        out[name] = make(Path(root) / name)
    return out
