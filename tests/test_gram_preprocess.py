"""GRAM's official preprocessing (gramviz.models.gram_official.preprocess) against hand-computed values:
frame indices, the bilinear squash resize and CLIP normalisation, frames decoded from videos written
here, the Kaldi fbank with GRAM's constants and its middle-slice rule, audio decoding, BERT tokens."""

import fractions
import math
from pathlib import Path

import av
import numpy as np
import pytest
import torch
import torchaudio
from torchaudio.compliance import kaldi

from gramviz.media import MediaError
from gramviz.models.gram_official import preprocess as pre
from gramviz.models.gram_official.preprocess import (
    CLIP_MEAN,
    CLIP_STD,
    FBANK_MEAN,
    FBANK_STD,
    FRAME_SETTINGS,
    frame_indices,
    official_fbank,
    official_frames,
    official_text,
    read_official_audio,
    read_official_frames,
)

MEAN64 = torch.tensor(CLIP_MEAN, dtype=torch.float64).view(1, 3, 1, 1)
STD64 = torch.tensor(CLIP_STD, dtype=torch.float64).view(1, 3, 1, 1)


def test_the_constants_are_gram_s():
    assert CLIP_MEAN == (0.48145466, 0.4578275, 0.40821073)
    assert CLIP_STD == (0.26862954, 0.26130258, 0.27577711)
    assert (FBANK_MEAN, FBANK_STD) == (15.41663, 6.55582)
    assert FRAME_SETTINGS == {"inference": 2, "evaluation": 8}


# ---------------------------------------------------------------- frame indices

@pytest.mark.parametrize("total, num_frames, expected", [
    (10, 2, [2, 7]),  # chunks 0-4, 5-9: the 3rd of 5
    (9, 2, [2, 6]),  # chunks 0-4, 5-8: the 3rd of 5, the 2nd of 4
    (10, 8, [0, 2, 4, 5, 6, 7, 8, 9]),  # chunks of 2, 2, then 1s: the first of 2
    (8, 8, list(range(8))),
    (3, 2, [0, 2]),
    (1, 1, [0]),
    (100, 8, [6, 19, 32, 45, 57, 69, 81, 93]),  # chunks of 13 from 0, 13, 26, 39 (7th), of 12 from 52 (6th)
])
def test_frame_indices_take_the_middle_of_each_array_split_chunk(total, num_frames, expected):
    chunks = np.array_split(np.arange(total), num_frames)
    by_rule = [int(c[(len(c) + 1) // 2 - 1]) for c in chunks]
    assert frame_indices(total, num_frames) == expected == by_rule


@pytest.mark.parametrize("total, num_frames", [(3, 4), (5, 0), (0, 1)])
def test_frame_indices_refuse_impossible_requests(total, num_frames):
    with pytest.raises(ValueError):
        frame_indices(total, num_frames)


# ---------------------------------------------------------------- frames

def test_a_2x2_frame_is_squash_resized_bilinearly_to_4x4_as_the_formula_says():
    # align_corners=False: output pixel d samples input (d + 0.5) / 2 - 0.5, clamped to the image
    w = torch.tensor([[1, 0], [0.75, 0.25], [0.25, 0.75], [0, 1]], dtype=torch.float64)
    img = torch.tensor([[[10, 200, 30], [40, 50, 255]], [[0, 90, 120], [250, 5, 60]]], dtype=torch.uint8)
    out = official_frames(img[None], size=4)
    assert out.shape == (1, 3, 4, 4) and out.dtype == torch.float32
    for c in range(3):
        plane = img[..., c].to(torch.float64) / 255.0
        expected = (w @ plane @ w.T - CLIP_MEAN[c]) / CLIP_STD[c]
        torch.testing.assert_close(out[0, c], expected.float(), rtol=0, atol=1e-6)


def test_frames_equal_float64_interpolation_then_clip_normalisation_then_float32():
    frames = torch.randint(0, 256, (3, 30, 50, 3), dtype=torch.uint8)
    x = torch.from_numpy(frames.numpy().transpose(0, 3, 1, 2) / 255.0)  # numpy's float64 division
    resized = torch.nn.functional.interpolate(x, size=(24, 24), mode="bilinear", align_corners=False, antialias=False)
    expected = ((resized - MEAN64) / STD64).float()
    assert torch.equal(official_frames(frames, size=24), expected)
    # the same frames given as float64 (T, 3, H, W) in [0, 1] give the same tensor
    assert torch.equal(official_frames(x.contiguous(), size=24), expected)


def test_downscaling_has_no_antialiasing():
    # 8 -> 2 samples input 1.5 and 5.5: the mean of pixels 1-2 and 5-6 of each row and column, nothing else
    img = torch.randint(0, 256, (1, 8, 8, 3), dtype=torch.uint8)
    out = official_frames(img, size=2).double() * STD64 + MEAN64
    x = img[0].permute(2, 0, 1).to(torch.float64) / 255.0
    for i, r in enumerate((1, 5)):
        for j, c in enumerate((1, 5)):
            torch.testing.assert_close(out[0, :, i, j], x[:, r:r + 2, c:c + 2].mean((1, 2)), rtol=0, atol=1e-6)


def test_frames_already_at_size_are_only_normalised():
    frames = torch.randint(0, 256, (2, 16, 16, 3), dtype=torch.uint8)
    expected = ((frames.permute(0, 3, 1, 2).double() / 255.0 - MEAN64) / STD64).float()
    assert torch.equal(official_frames(frames, size=16), expected)


@pytest.mark.parametrize("frames", [
    torch.zeros(2, 8, 8, 4, dtype=torch.uint8),  # not RGB
    torch.zeros(8, 8, 3, dtype=torch.uint8),  # no time axis
    torch.zeros(2, 8, 8, 3),  # float but channels last
    torch.full((1, 3, 8, 8), 2.0),  # float outside [0, 1]
    torch.full((1, 3, 8, 8), float("nan")),
    torch.zeros(1, 3, 8, 8, dtype=torch.int64),
    torch.zeros(0, 8, 8, 3, dtype=torch.uint8),
])
def test_bad_frames_are_refused(frames):
    with pytest.raises((ValueError, TypeError)):
        official_frames(frames, size=4)


# ---------------------------------------------------------------- videos

def colour(i: int) -> tuple[int, int, int]:
    """The colour of frame i of the test videos: it encodes i in each channel."""
    return 25 * i, 250 - 25 * i, 7 * i


def write_video(path: Path, n: int = 10, size=(40, 30)) -> Path:
    """n solid frames of colour(i), lossless (FFV1 in RGB), 10 frames per second."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=10)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "bgr0"
        for i in range(n):
            img = np.empty((size[1], size[0], 3), np.uint8)
            img[:] = colour(i)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(stream.encode(None))
    return path


def expected_frames(indices: list[int], size: int, shape=(30, 40)) -> torch.Tensor:
    frames = torch.stack([torch.tensor(colour(i), dtype=torch.uint8).expand(*shape, 3) for i in indices])
    return official_frames(frames, size=size)


@pytest.mark.parametrize("ext, reported", [("avi", 10), ("mkv", 0)])  # the container's frame count or none
@pytest.mark.parametrize("num_frames", [FRAME_SETTINGS["inference"], FRAME_SETTINGS["evaluation"]])
def test_the_decoded_frames_are_the_middle_ones(tmp_path, ext, reported, num_frames):
    path = write_video(tmp_path / f"clip.{ext}")
    with av.open(str(path)) as container:
        assert container.streams.video[0].frames == reported  # both ways of counting are exercised
    out = read_official_frames(path, num_frames=num_frames, size=16)
    indices = {2: [2, 7], 8: [0, 2, 4, 5, 6, 7, 8, 9]}[num_frames]
    assert out.shape == (num_frames, 3, 16, 16) and out.dtype == torch.float32
    assert torch.equal(out, expected_frames(indices, 16))
    # the colour read back names the frame
    red = ((out[:, 0].double() * CLIP_STD[0] + CLIP_MEAN[0]) * 255).mean((1, 2))
    assert [round(float(r) / 25) for r in red] == indices
    assert torch.equal(read_official_frames(path, num_frames=num_frames, size=16), out)  # deterministic


def test_a_frame_count_larger_than_the_decodable_frames_is_recounted(tmp_path, monkeypatch):
    path = write_video(tmp_path / "clip.avi")
    monkeypatch.setattr(pre, "_reported_frame_count", lambda p: 25)  # frame_indices(25, 2) = [6, 18]: 18 is missing
    assert torch.equal(read_official_frames(path, num_frames=2, size=8), expected_frames([2, 7], 8))


def test_video_errors_name_the_file(tmp_path):
    path = write_video(tmp_path / "short.avi", n=5)
    with pytest.raises(MediaError, match=r"short\.avi: the video has 5 frames, fewer than the 8"):
        read_official_frames(path, num_frames=8)
    with pytest.raises(MediaError, match=r"missing\.mp4"):
        read_official_frames(tmp_path / "missing.mp4")
    sound = write_audio(tmp_path / "sound.wav", "pcm_s16le", *stereo_int16(1000), rate=8000)
    with pytest.raises(MediaError, match=r"sound\.wav: no video stream"):
        read_official_frames(sound)


# ---------------------------------------------------------------- fbank

def wave(seconds: float, rate: int = 16000, seed: int = 0) -> torch.Tensor:
    """A tone with noise in [-1, 1], float32."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(int(seconds * rate), dtype=torch.float64) / rate
    x = 0.4 * torch.sin(2 * math.pi * 440 * t) + 0.1 * (torch.rand(t.numel(), generator=g, dtype=torch.float64) - 0.5)
    return x.float()


def normalised_fbank(x16k: torch.Tensor) -> torch.Tensor:
    """The official steps written out: x 2**15, Kaldi fbank (64 bins, 25/10 ms), GRAM's normalisation."""
    f = kaldi.fbank(x16k[None] * 32768, num_mel_bins=64, sample_frequency=16000, frame_length=25, frame_shift=10)
    return (f - 15.41663) / (2 * 6.55582)


def test_a_short_clip_is_its_normalised_fbank_then_zeros():
    x = wave(3.0)  # (48000 - 400) // 160 + 1 = 298 frames
    out = official_fbank(x, 16000)
    assert out.shape == (1024, 64) and out.dtype == torch.float32
    ref = normalised_fbank(x)
    assert ref.shape[0] == 298
    assert torch.equal(out[:298], ref)
    assert torch.equal(out[298:], torch.zeros(1024 - 298, 64))
    assert torch.equal(official_fbank(x[None], 16000), out)  # (1, S) is the same waveform
    assert torch.equal(official_fbank(x.double(), 16000), out)  # cast to float32 as librosa gives it


# (target length, frames L) -> (slices S after padding by max(T - L, T - L % T), the middle slice (S + 1) // 2 - 1)
SLICES = {
    (1024, 1024): (2, 0),  # an exact multiple gains a whole zero slice; the middle of 2 is the first
    (1024, 1500): (2, 0),
    (1024, 2048): (3, 1),
    (128, 128): (2, 0),
    (128, 300): (3, 1),
    (128, 450): (4, 1),
    (128, 520): (5, 2),
    (128, 640): (6, 2),
}


@pytest.mark.parametrize("target, frames", sorted(SLICES))
def test_long_clips_keep_the_middle_slice(target, frames):
    x = wave((400 + 160 * (frames - 1)) / 16000, seed=frames)  # exactly `frames` fbank frames
    ref = normalised_fbank(x)
    assert ref.shape[0] == frames
    slices, middle = SLICES[target, frames]
    padded = torch.zeros(slices * target, 64)
    padded[:frames] = ref
    out = official_fbank(x, 16000, target_length=target)
    assert out.shape == (target, 64)
    assert torch.equal(out, padded[middle * target:(middle + 1) * target])


def test_other_rates_are_resampled_to_16k_as_the_official_transform_does():
    x = wave(1.0, rate=44100)
    resampled = torchaudio.transforms.Resample(44100, 16000)(x[None])[0]  # kernel in float64, kept in float32
    assert resampled.numel() == 16000
    out = official_fbank(x, 44100)
    assert torch.equal(out, official_fbank(resampled, 16000))
    # the functional resampler (float32 kernel) differs only in the last digits
    functional = torchaudio.functional.resample(x, 44100, 16000)
    torch.testing.assert_close(official_fbank(functional, 16000), out, rtol=0, atol=1e-3)


def test_other_settings_follow_mel_bins_and_target_length():
    x = wave(1.0)  # 98 frames: padded to 128, one slice of 128
    out = official_fbank(x, 16000, mel_bins=128, target_length=128)
    ref = kaldi.fbank(x[None] * 32768, num_mel_bins=128, sample_frequency=16000, frame_length=25, frame_shift=10)
    assert out.shape == (128, 128)
    assert torch.equal(out[:98], (ref - 15.41663) / (2 * 6.55582)) and not out[98:].any()


@pytest.mark.parametrize("waveform, rate, error", [
    (torch.full((16000,), float("nan")), 16000, ValueError),
    (torch.zeros(2, 16000), 16000, ValueError),  # stereo
    (torch.zeros(16000, dtype=torch.int16), 16000, TypeError),
    (torch.zeros(399), 16000, ValueError),  # shorter than one 25 ms window
    (torch.zeros(16000), 0, ValueError),
    (torch.zeros(16000), 22050.5, ValueError),
])
def test_bad_waveforms_are_refused(waveform, rate, error):
    with pytest.raises(error):
        official_fbank(waveform, rate)


# ---------------------------------------------------------------- audio files

def stereo_int16(n: int) -> tuple[np.ndarray, np.ndarray]:
    t = np.arange(n)
    left = (12000 * np.sin(2 * np.pi * t / 37)).astype(np.int16)
    right = (-9000 * np.cos(2 * np.pi * t / 23) + 31).astype(np.int16)
    return left, right


def write_audio(path: Path, codec: str, left: np.ndarray, right: np.ndarray, rate: int) -> Path:
    """Stereo 16-bit samples, encoded with `codec` (the encoder converts to its own sample format)."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=rate)
        stream.layout = "stereo"
        step = stream.frame_size or 1024
        for start in range(0, left.size, step):
            block = np.stack([left[start:start + step], right[start:start + step]])
            frame = av.AudioFrame.from_ndarray(block, format="s16p", layout="stereo")
            frame.sample_rate, frame.pts, frame.time_base = rate, start, fractions.Fraction(1, rate)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


@pytest.mark.parametrize("ext, codec", [("wav", "pcm_s16le"), ("flac", "flac")])
def test_lossless_audio_is_the_mean_of_its_channels_scaled_by_2_to_the_minus_15(tmp_path, ext, codec):
    left, right = stereo_int16(5000)
    waveform, rate = read_official_audio(write_audio(tmp_path / f"sound.{ext}", codec, left, right, 22050))
    expected = (left.astype(np.float32) / 32768 + right.astype(np.float32) / 32768) / 2
    assert rate == 22050 and waveform.dtype == torch.float32
    assert torch.equal(waveform, torch.from_numpy(expected))


@pytest.mark.parametrize("ext, codec", [("mp3", "libmp3lame"), ("mp4", "aac")])
def test_compressed_audio_decodes_to_a_mono_waveform_at_its_rate(tmp_path, ext, codec):
    left, right = stereo_int16(44100)
    waveform, rate = read_official_audio(write_audio(tmp_path / f"sound.{ext}", codec, left, right, 44100))
    assert rate == 44100 and waveform.dim() == 1 and waveform.dtype == torch.float32
    assert abs(waveform.numel() - 44100) < 4096  # encoder delay and padding
    assert waveform.abs().max() < 1 and torch.isfinite(waveform).all()
    assert official_fbank(waveform, rate).shape == (1024, 64)


def test_audio_errors_name_the_file(tmp_path):
    video = write_video(tmp_path / "silent.avi")
    with pytest.raises(MediaError, match=r"silent\.avi: the file has no audio stream"):
        read_official_audio(video)
    with pytest.raises(MediaError, match=r"missing\.wav"):
        read_official_audio(tmp_path / "missing.wav")
    (tmp_path / "noise.mp3").write_bytes(b"not audio at all" * 10)
    with pytest.raises(MediaError, match=r"noise\.mp3"):
        read_official_audio(tmp_path / "noise.mp3")


# ---------------------------------------------------------------- text

@pytest.fixture
def bert_tokenizer(tmp_path):
    from transformers import BertTokenizer

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "dog", "barks", "the", "cat", "sleeps", "."]
    (tmp_path / "vocab.txt").write_text("\n".join(words) + "\n", encoding="utf-8")
    return BertTokenizer.from_pretrained(str(tmp_path))


def test_captions_are_padded_and_truncated_to_40_tokens(bert_tokenizer):
    ids, mask = official_text(bert_tokenizer, ["A dog barks.", "the cat sleeps " * 30])
    assert ids.shape == mask.shape == (2, 40) and ids.dtype == mask.dtype == torch.int64
    # [CLS] a dog barks . [SEP] then [PAD]
    assert ids[0].tolist() == [2, 5, 6, 7, 11, 3] + [0] * 34
    assert mask[0].tolist() == [1] * 6 + [0] * 34
    # truncated: [CLS], 38 words, [SEP]
    assert ids[1].tolist() == [2] + [8, 9, 10] * 12 + [8, 9] + [3]
    assert mask[1].tolist() == [1] * 40
    short_ids, short_mask = official_text(bert_tokenizer, "a cat", max_len=8)
    assert short_ids.tolist() == [[2, 5, 9, 3, 0, 0, 0, 0]] and short_mask.tolist() == [[1, 1, 1, 1, 0, 0, 0, 0]]
    again = official_text(bert_tokenizer, ["A dog barks.", "the cat sleeps " * 30])
    assert torch.equal(again[0], ids) and torch.equal(again[1], mask)


@pytest.mark.parametrize("texts, error", [([], ValueError), (["a", 3], TypeError)])
def test_bad_captions_are_refused(bert_tokenizer, texts, error):
    with pytest.raises(error):
        official_text(bert_tokenizer, texts)


# ---------------------------------------------------------------- determinism

def test_every_step_gives_identical_tensors_twice():
    x = wave(3.0, rate=22050)
    assert torch.equal(official_fbank(x, 22050), official_fbank(x, 22050))
    frames = torch.randint(0, 256, (2, 20, 30, 3), dtype=torch.uint8)
    assert torch.equal(official_frames(frames, size=12), official_frames(frames, size=12))


def test_yuv_video_is_converted_with_bt601_whatever_its_colour_tag(tmp_path):
    # a BT.709-tagged 4:4:4 stream (lossless FFV1): the conversion must use the BT.601
    # matrix (as OpenCV's reader does), checked against the limited-range formula applied by hand
    path = tmp_path / "bt709.mkv"
    rng = np.random.default_rng(0)
    planes = [rng.integers(16, 236, size=(3, 16, 16), dtype=np.uint8) for _ in range(3)]
    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=10)
        stream.width, stream.height, stream.pix_fmt = 16, 16, "yuv444p"
        stream.codec_context.colorspace = 1  # AVCOL_SPC_BT709
        stream.codec_context.color_range = 1  # limited (MPEG) range
        for yuv in planes:
            frame = av.VideoFrame.from_ndarray(yuv, format="yuv444p")
            frame.colorspace, frame.color_range = 1, 1
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    picked, _ = pre._decode_picked(path, [1])
    y, u, v = (planes[1][i].astype(np.float64) for i in range(3))
    y, u, v = 255 / 219 * (y - 16), 255 / 224 * (u - 128), 255 / 224 * (v - 128)
    bt601 = np.stack([y + 1.402 * v, y - 0.344136 * u - 0.714136 * v, y + 1.772 * u], axis=-1)
    bt709 = np.stack([y + 1.5748 * v, y - 0.187324 * u - 0.468124 * v, y + 1.8556 * u], axis=-1)
    got = picked[0].numpy().astype(np.float64)
    inside = (bt601 > 2) & (bt601 < 253) & (bt709 > 2) & (bt709 < 253)  # away from clipping
    assert np.abs(got - bt601)[inside].max() <= 2
    assert np.abs(got - bt709)[inside].max() > 8  # the tag's own matrix would differ visibly
