"""GRAM's own preprocessing (its fast-inference path in evaluation mode), deterministic, as pure functions.

What the official GRAM code does (``utils/utils_for_fast_inference.py``, ``VisionMapper.read`` and
``AudioMapper.read``; the benchmark loaders ``data/vision_mapper.py`` and ``data/audio_mapper.py`` do
the same for the audio and for the frame choice), and what gramviz does here:

- **frames**: the frame count of the video is split into ``num_frames`` chunks (`numpy.array_split`)
  and the middle frame of each chunk is taken (the evaluation rule ``chunk[(len + 1) // 2 - 1]``).
  Frames are RGB, divided by 255 in float64, squash-resized to ``size`` x ``size`` (bilinear,
  ``align_corners=False``, no antialiasing: torchvision 0.15's ``Resize`` on tensors), normalised with
  the CLIP mean and std, then cast to float32. The fast-inference example uses 2 frames, the
  benchmark evaluation 8 (`FRAME_SETTINGS`).
- **audio**: the mono waveform is resampled to 16 kHz (``torchaudio.transforms.Resample`` with its
  defaults), scaled by 2**15, turned into a Kaldi fbank (64 mel bins, 25 ms windows every 10 ms),
  normalised with GRAM's constants, zero-padded and cut into 1,024-frame slices; the middle slice is
  kept (one segment per clip).
- **text**: BERT tokens, padded and truncated to 40; token types are all 0.

Deviations from the official path (each kept as small as possible):

- The official fast-inference configuration marks its data as training data, so it picks frames and
  audio slices at random; gramviz always applies the evaluation rule (the middle ones).
- Video is decoded with PyAV (FFmpeg) instead of OpenCV. The frame count is the stream's frame count
  as the container reports it (what OpenCV reads too); when the container does not report it, gramviz
  counts the decoded frames, where OpenCV estimates ``round(duration x frame rate)``. Frames are
  decoded in order and the k-th decoded frame is taken, where OpenCV seeks to frame k (a seek that
  can land on a neighbouring frame in some codecs). If the container's count is larger than the
  number of decodable frames, gramviz recounts with the decoded frames; OpenCV's path fills the
  missing frames with randomly chosen ones.
- YUV -> RGB conversion is FFmpeg's swscale through PyAV with the ITU-R BT.601 matrix whatever the
  stream's colour tags say, as OpenCV's reader does (a BT.709-tagged H.264 clip converted by its tag
  differs from OpenCV's frames by up to 21 levels of 255; forced to BT.601 the frames of GRAM's
  four example clips are bit-identical to OpenCV's). Display-rotation metadata is not applied.
- A video with fewer frames than ``num_frames`` is an error; the official path skips the clip.
- Audio is decoded with PyAV (FFmpeg) instead of librosa (libsndfile / audioread). PCM formats give
  the same float32 samples (integer samples scaled by 2**-15 or 2**-31); compressed formats (mp3,
  aac) can differ slightly between decoders, e.g. in gapless trimming.
- The MSR-VTT configuration evaluates with ``Resize(224) + CenterCrop(224)`` instead of the squash
  resize, and DiDeMo / ActivityNet with 2 audio slices; gramviz implements the fast-inference path
  (squash resize, one slice), with 2 or 8 frames.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ...media import MediaError, _open, _video_stream

__all__ = ["CLIP_MEAN", "CLIP_STD", "FBANK_MEAN", "FBANK_STD", "FRAME_SETTINGS", "frame_indices",
           "official_fbank", "official_frames", "official_text", "read_official_audio", "read_official_frames"]

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
FBANK_MEAN = 15.41663
FBANK_STD = 6.55582
# the official fast-inference example uses 2 frames, the benchmark evaluation 8
FRAME_SETTINGS = {"inference": 2, "evaluation": 8}

_FBANK_RATE = 16000
_FBANK_WINDOW = 400  # samples in one 25 ms window at 16 kHz: the shortest waveform with one fbank frame


def frame_indices(total: int, num_frames: int) -> list[int]:
    """The frame of each of ``num_frames`` chunks of ``range(total)`` (numpy.array_split), the middle one.

    The middle frame of a chunk is ``chunk[(len(chunk) + 1) // 2 - 1]``: the earlier of the two middle
    frames when the chunk has an even length.

    Args:
        total: the number of frames of the video.
        num_frames: the number of frames to pick (at most ``total``).

    Returns:
        ``num_frames`` increasing frame indices.

    Raises:
        ValueError: ``num_frames`` < 1 or ``total`` < ``num_frames``.

    Example:
        >>> frame_indices(10, 2)
        [2, 7]
        >>> frame_indices(10, 8)
        [0, 2, 4, 5, 6, 7, 8, 9]
    """
    total, num_frames = int(total), int(num_frames)
    if num_frames < 1:
        raise ValueError(f"num_frames must be at least 1, got {num_frames}")
    if total < num_frames:
        raise ValueError(f"cannot pick {num_frames} frames from {total}")
    chunks = np.array_split(np.arange(total), num_frames)
    return [int(chunk[(len(chunk) + 1) // 2 - 1]) for chunk in chunks]


def _as_unit_float64(frames: Tensor) -> Tensor:
    """(T, H, W, 3) uint8 or (T, 3, H, W) float in [0, 1] -> (T, 3, H, W) float64 in [0, 1]."""
    frames = torch.as_tensor(frames)
    if frames.dtype == torch.uint8:
        if frames.dim() != 4 or frames.shape[-1] != 3:
            raise ValueError(f"uint8 frames must be (T, H, W, 3) RGB, got shape {tuple(frames.shape)}")
        # channels-last strides, as the official numpy transpose gives them (interpolate's result is the same)
        return frames.to(torch.float64).permute(0, 3, 1, 2) / 255.0
    if frames.is_floating_point():
        if frames.dim() != 4 or frames.shape[1] != 3:
            raise ValueError(f"float frames must be (T, 3, H, W) in [0, 1], got shape {tuple(frames.shape)}")
        x = frames.to(torch.float64)
        if x.numel() and not (torch.isfinite(x).all() and x.min() >= 0 and x.max() <= 1):
            raise ValueError("float frames must hold finite values in [0, 1]")
        return x
    raise TypeError(f"frames must be uint8 (T, H, W, 3) or float (T, 3, H, W), got dtype {frames.dtype}")


def official_frames(frames: Tensor, size: int = 224) -> Tensor:
    """Frames -> GRAM's vision input: /255 in float64, squash-resize, CLIP mean/std, float32.

    Args:
        frames: (T, H, W, 3) uint8 RGB frames, or (T, 3, H, W) float frames in [0, 1] (these skip the
            /255; frames already divided in float32 are not bit-equal to the official float64 path).
        size: the side of the square output (GRAM: 224).

    Returns:
        (T, 3, size, size) float32: bilinear resize computed in float64 (``align_corners=False``,
        ``antialias=False``; the aspect ratio is not kept), then ``(x - CLIP_MEAN) / CLIP_STD``.

    Raises:
        ValueError, TypeError: frames of another shape or dtype, no frames, or float values outside [0, 1].

    Example:
        >>> official_frames(torch.zeros(2, 48, 64, 3, dtype=torch.uint8), size=32).shape
        torch.Size([2, 3, 32, 32])
    """
    x = _as_unit_float64(frames)
    if min(x.shape) < 1:
        raise ValueError(f"frames must hold at least one frame of at least 1 x 1 pixels, got shape {tuple(x.shape)}")
    if int(size) < 1:
        raise ValueError(f"size must be at least 1, got {size}")
    if tuple(x.shape[-2:]) != (size, size):
        x = torch.nn.functional.interpolate(x, size=(int(size), int(size)), mode="bilinear", align_corners=False,
                                            antialias=False)
    mean = torch.tensor(CLIP_MEAN, dtype=torch.float64).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD, dtype=torch.float64).view(1, 3, 1, 1)
    return ((x - mean) / std).float()


def _decode_picked(path: Path, wanted: list[int]) -> tuple[list[Tensor], int]:
    """The decoded frames at the indices ``wanted`` (increasing) as (H, W, 3) uint8, and how many frames
    were decoded (all of them when the stream ends before the last wanted index)."""
    import av

    picked, want, count = [], set(wanted), 0
    last = wanted[-1] if wanted else -1
    with _open(path) as container:
        stream = _video_stream(container)
        if stream is None:
            raise MediaError(f"{path}: no video stream")
        stream.thread_type = "AUTO"
        try:
            for frame in container.decode(stream):
                if count in want:
                    # BT.601 as OpenCV converts, not the stream's own colour tags
                    rgb = frame.reformat(format="rgb24", src_colorspace="ITU601")
                    picked.append(torch.from_numpy(rgb.to_ndarray()))
                count += 1
                if count > last >= 0:
                    break
        except av.FFmpegError as e:
            raise MediaError(f"{path}: the video stream is corrupt or truncated ({e})") from e
    return picked, count


def _reported_frame_count(path: Path) -> int:
    with _open(path) as container:
        stream = _video_stream(container)
        if stream is None:
            raise MediaError(f"{path}: no video stream")
        return int(stream.frames or 0)


def read_official_frames(path: str | Path, num_frames: int = 8, size: int = 224) -> Tensor:
    """Decode the frames ``frame_indices(frame_count, num_frames)`` of a video file, GRAM-preprocessed.

    The frame count is the video stream's frame count as the container reports it (``nb_frames``,
    as OpenCV's ``CAP_PROP_FRAME_COUNT`` reads it). When the container reports none, or reports more
    frames than can be decoded, the decoded frames are counted and that count is used instead.

    Args:
        path: a video file in any container PyAV reads (mp4, avi, mkv, webm, mov, ...).
        num_frames: frames to pick, one per chunk (`FRAME_SETTINGS`: 2 for inference, 8 for evaluation).
        size: the side of the square output.

    Returns:
        (num_frames, 3, size, size) float32, as `official_frames` makes them.

    Raises:
        MediaError: the file is missing, not media, has no video stream, is corrupt, or has fewer than
            ``num_frames`` frames; the message names the file.
        ValueError: ``num_frames`` < 1.
    """
    path = Path(path)
    if int(num_frames) < 1:
        raise ValueError(f"num_frames must be at least 1, got {num_frames}")
    count = _reported_frame_count(path)
    if count == 0:  # unknown to the container: count the decoded frames
        count = _decode_picked(path, [])[1]
    for _ in range(2):  # a second pass only when the reported count was larger than the decodable frames
        if count < num_frames:
            raise MediaError(f"{path}: the video has {count} frames, fewer than the {num_frames} to pick")
        wanted = frame_indices(count, num_frames)
        picked, decoded = _decode_picked(path, wanted)
        if len(picked) == num_frames:
            return torch.cat([official_frames(frame[None], size) for frame in picked])
        count = decoded
    raise MediaError(f"{path}: the video stream changed while it was read")


def read_official_audio(path: str | Path) -> tuple[Tensor, int]:
    """Decode a file's audio to a mono float32 waveform at its own sample rate.

    Integer samples become floats in [-1, 1) (16-bit divided by 2**15, 32-bit by 2**31, as libsndfile
    does for librosa); channels are averaged one after the other, as ``numpy.mean`` over the channel
    axis does.

    Args:
        path: any file PyAV reads with an audio stream (wav, flac, mp3, ogg, m4a, the audio of an mp4).

    Returns:
        ``(waveform, sample_rate)``: a (S,) float32 tensor and the stream's rate in Hz.

    Raises:
        MediaError: the file is missing, not media, has no audio stream, is corrupt, or holds no samples;
            the message names the file.
    """
    import av

    path = Path(path)
    with _open(path) as container:
        if not container.streams.audio:
            raise MediaError(f"{path}: the file has no audio stream")
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="fltp")  # sample format only: same layout, same rate
        chunks, rate = [], stream.rate
        try:
            for frame in container.decode(stream):
                rate = frame.sample_rate or rate
                for out in resampler.resample(frame):
                    chunks.append(torch.from_numpy(out.to_ndarray().copy()))  # (channels, samples)
            for out in resampler.resample(None):
                chunks.append(torch.from_numpy(out.to_ndarray().copy()))
        except av.FFmpegError as e:
            raise MediaError(f"{path}: the audio stream is corrupt or truncated ({e})") from e
    if not chunks or sum(c.shape[-1] for c in chunks) == 0:
        raise MediaError(f"{path}: the audio stream has no decodable samples")
    if len({c.shape[0] for c in chunks}) != 1:
        raise MediaError(f"{path}: the audio stream changes its number of channels")
    channels = torch.cat(chunks, dim=1)
    mono = channels[0].clone()
    for channel in channels[1:]:
        mono += channel
    return (mono / channels.shape[0]).to(torch.float32), int(rate)


def _mono_float32(waveform: Tensor) -> Tensor:
    waveform = torch.as_tensor(waveform)
    if not waveform.is_floating_point():
        raise TypeError(f"waveform must be a floating-point tensor in [-1, 1], got dtype {waveform.dtype}")
    if waveform.dim() == 2 and waveform.shape[0] == 1:
        waveform = waveform[0]
    if waveform.dim() != 1:
        raise ValueError(f"waveform must be mono, (S,) or (1, S), got shape {tuple(waveform.shape)}")
    if not torch.isfinite(waveform).all():
        raise ValueError("waveform holds NaN or infinite values")
    return waveform.to(torch.float32)[None]


def official_fbank(waveform: Tensor, sample_rate: int, mel_bins: int = 64, target_length: int = 1024) -> Tensor:
    """A mono waveform -> GRAM's audio input: the middle ``target_length``-frame slice of its Kaldi fbank.

    Steps, as the official code takes them: resample to 16 kHz with ``torchaudio.transforms.Resample``
    (sinc_interp_hann, width 6, rolloff 0.99, kernel computed in float64 and kept in float32) unless
    the rate is 16 kHz; multiply by 2**15; ``torchaudio.compliance.kaldi.fbank`` with ``mel_bins`` bins,
    25 ms frames every 10 ms (povey window, no dither, preemphasis 0.97, snip_edges); normalise as
    ``(f - FBANK_MEAN) / (FBANK_STD * 2)``; append ``max(target_length - L, target_length - L %
    target_length)`` zero frames to the L frames (an exact multiple of ``target_length`` gains a whole
    zero slice); keep slice ``(S + 1) // 2 - 1`` of the S slices.

    Args:
        waveform: (S,) or (1, S) float waveform in [-1, 1] (cast to float32, as librosa gives it).
        sample_rate: its rate in Hz (an integer).
        mel_bins: mel bins (GRAM: 64, or ``audio_melbins`` of the checkpoint's hps.json).
        target_length: frames per slice (GRAM: 1024, 10.24 s).

    Returns:
        (target_length, mel_bins) float32.

    Raises:
        ValueError, TypeError: not a finite mono float waveform, a bad rate, or shorter than one 25 ms frame.

    Example:
        >>> official_fbank(torch.zeros(16000), 16000).shape
        torch.Size([1024, 64])
    """
    import torchaudio
    from torchaudio.compliance import kaldi

    x = _mono_float32(waveform)
    if int(sample_rate) != sample_rate or sample_rate < 1:
        raise ValueError(f"sample_rate must be a positive integer, got {sample_rate}")
    if int(mel_bins) < 1 or int(target_length) < 1:
        raise ValueError(f"mel_bins and target_length must be positive, got {mel_bins} and {target_length}")
    if int(sample_rate) != _FBANK_RATE:
        x = torchaudio.transforms.Resample(int(sample_rate), _FBANK_RATE)(x)
    if x.shape[-1] < _FBANK_WINDOW:
        raise ValueError(f"the waveform is too short: {x.shape[-1]} samples at 16 kHz, the fbank needs at least "
                         f"{_FBANK_WINDOW} (25 ms)")
    x = x * 2**15
    fbank = kaldi.fbank(x, num_mel_bins=int(mel_bins), sample_frequency=_FBANK_RATE, frame_length=25, frame_shift=10,
                        dither=0.0, window_type="povey", preemphasis_coefficient=0.97, snip_edges=True)
    fbank = (fbank - FBANK_MEAN) / (FBANK_STD * 2)
    length, target = fbank.shape[0], int(target_length)
    pad = max(target * 1 - length, target - length % target)  # one segment per clip
    fbank = torch.nn.functional.pad(fbank, (0, 0, 0, pad))
    slices = fbank.shape[0] // target
    middle = (slices + 1) // 2 - 1
    return fbank[middle * target:(middle + 1) * target].contiguous()


def official_text(tokenizer, texts: Sequence[str], max_len: int = 40) -> tuple[Tensor, Tensor]:
    """Captions -> ``(input_ids, attention_mask)`` as GRAM tokenizes them.

    ``padding="max_length"``, ``truncation=True``, ``max_length=max_len``; token types are not passed
    to the model, so they are all 0.

    Args:
        tokenizer: a transformers ``BertTokenizer`` or ``BertTokenizerFast`` (bert-base-uncased for GRAM).
        texts: the captions (a single string counts as one caption).
        max_len: tokens per caption, [CLS] and [SEP] included (GRAM: 40).

    Returns:
        Two (len(texts), max_len) int64 tensors: token ids and the attention mask (1 on tokens, 0 on padding).

    Raises:
        ValueError, TypeError: no captions, a caption that is not a string, or ``max_len`` < 2.
    """
    if isinstance(texts, str):
        texts = [texts]
    texts = list(texts)
    if not texts:
        raise ValueError("texts must hold at least one caption")
    if not all(isinstance(t, str) for t in texts):
        raise TypeError("every caption must be a string")
    if int(max_len) < 2:
        raise ValueError(f"max_len must be at least 2 ([CLS] and [SEP]), got {max_len}")
    enc = tokenizer(texts, padding="max_length", truncation=True, max_length=int(max_len), return_tensors="pt")
    return enc["input_ids"].long(), enc["attention_mask"].long()
