"""Record the official GRAM preprocessing (evaluation rule) on synthetic media and GRAM's examples.

Runs in the REFERENCE environment and imports ``VisionMapper`` and ``AudioMapper`` from the official
``utils/utils_for_fast_inference.py`` (GRAM checkout ``--gram``), constructed with ``training=False``
so that frames and audio slices are the middle ones (the fast-inference example itself marks its
data as training data and picks them at random).

Writes under ``--out``/preprocess:
    media/             the synthetic clips (made here, deterministic):
                       raw.avi (uncompressed BGR, 37 frames 96x64), mjpg.avi (the same frames, MJPG),
                       tone44k.wav (6 s, 44.1 kHz, 16-bit), long44k.wav (25 s: three 1,024-frame
                       slices, the middle one is kept), tone16k.wav (3 s at 16 kHz: no resampling)
    official.safetensors  video.<name> (2, 3, 224, 224) and audio.<name> (1, 1024, 64) as the official
                       mappers return them (cast to float32, as build_batch does)
    official.json      the file of each entry (GRAM's own examples from assets/ included)
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--gram", required=True, type=Path, help="checkout of ispamm/GRAM (b70c5c2)")
    p.add_argument("--out", required=True, type=Path, help="the equivalence output folder")
    p.add_argument("--no-assets", action="store_true", help="skip GRAM's example clips in assets/")
    return p.parse_args()


def synthetic_frames(n: int = 37, h: int = 64, w: int = 96) -> np.ndarray:
    """(n, h, w, 3) uint8 BGR frames: moving gradients and a square, different in every frame."""
    y, x = np.mgrid[0:h, 0:w]
    frames = []
    for t in range(n):
        b = (x * 255 / (w - 1) + 7 * t) % 256
        g = (y * 255 / (h - 1) + 3 * t) % 256
        r = 128 + 100 * np.sin((x + y + 5 * t) / 9.0)
        frame = np.stack([b, g, r], axis=-1)
        frame[10 + t % 30: 26 + t % 30, 20:36] = (255 - 4 * t, 40 + 5 * t, 200)
        frames.append(frame.clip(0, 255).astype(np.uint8))
    return np.stack(frames)


def write_video(path: Path, frames: np.ndarray, fourcc: str | int) -> None:
    import cv2
    code = fourcc if isinstance(fourcc, int) else cv2.VideoWriter_fourcc(*fourcc)
    writer = cv2.VideoWriter(str(path), code, 25.0, (frames.shape[2], frames.shape[1]))
    if not writer.isOpened():
        raise SystemExit(f"OpenCV cannot write {path} with fourcc {fourcc!r}")
    for f in frames:
        writer.write(f)
    writer.release()


def write_wav(path: Path, seconds: float, rate: int) -> None:
    """A chirp plus a tone and a little noise, 16-bit PCM."""
    import soundfile
    t = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(int(seconds * 100) + rate)
    wave = 0.4 * np.sin(2 * math.pi * (200 + 300 * t) * t) + 0.2 * np.sin(2 * math.pi * 1234.5 * t)
    wave = wave * (0.6 + 0.4 * np.sin(2 * math.pi * 0.7 * t)) + 0.02 * rng.standard_normal(t.shape)
    soundfile.write(str(path), wave.astype(np.float32), rate, subtype="PCM_16")


def mappers(gram: Path):
    """The official mappers, evaluation rule, EVA-CLIP normalisation, BEATs fbank (64 bins, 1024)."""
    sys.path.insert(0, str(gram))
    from easydict import EasyDict as edict
    from utils.utils_for_fast_inference import AudioMapper, VisionMapper
    args = edict(model_cfg=edict(vision_resolution=224, vision_encoder_type="evaclip01_giant",
                                 audio_melbins=64, audio_target_length=1024, audio_encoder_type="beats"))
    d_cfg = edict(vision="", audio="", name="equivalence", training=False, vision_format="video_rawvideo",
                  vision_sample_num=8, audio_sample_num=1)
    return VisionMapper(d_cfg, args), AudioMapper(d_cfg, args)


def main() -> None:
    a = parse_args()
    gram, root = a.gram.resolve(), (a.out / "preprocess").resolve()
    media = root / "media"
    media.mkdir(parents=True, exist_ok=True)
    frames = synthetic_frames()
    write_video(media / "raw.avi", frames, 0)  # fourcc 0: uncompressed
    write_video(media / "mjpg.avi", frames, "MJPG")
    write_wav(media / "tone44k.wav", 6.0, 44100)
    write_wav(media / "long44k.wav", 25.0, 44100)
    write_wav(media / "tone16k.wav", 3.0, 16000)

    videos = {"raw": media / "raw.avi", "mjpg": media / "mjpg.avi"}
    audios = {"tone44k": media / "tone44k.wav", "long44k": media / "long44k.wav", "tone16k": media / "tone16k.wav"}
    if not a.no_assets:
        for i in range(1, 5):
            videos[f"video{i}"] = gram / f"assets/videos/video{i}.mp4"
            audios[f"audio{i}"] = gram / f"assets/audios/audio{i}.mp3"

    vision, audio = mappers(gram)
    tensors, files = {}, {}
    for name, path in videos.items():
        pixels = vision.read(str(path))
        if pixels is None or isinstance(pixels, tuple):
            print(f"official VisionMapper could not read {path}; skipped")
            continue
        tensors[f"video.{name}"] = pixels.float().contiguous()
        files[f"video.{name}"] = str(path)
    skipped = {}
    for name, path in audios.items():
        try:
            tensors[f"audio.{name}"] = audio.read(str(path)).float().contiguous()
            files[f"audio.{name}"] = str(path)
        except Exception as e:  # noqa: BLE001 (e.g. AAC named .mp3: librosa then needs the ffmpeg program)
            skipped[f"audio.{name}"] = f"{type(e).__name__}: {e}"
            print(f"official AudioMapper could not read {path} ({type(e).__name__}); skipped")

    from safetensors.torch import save_file
    save_file(tensors, str(root / "official.safetensors"))
    (root / "official.json").write_text(json.dumps({"files": files, "skipped": skipped, "frames": 2, "size": 224, "melbins": 64,
                                                    "target_length": 1024}, indent=1))
    print(f"official preprocessing: {len(tensors)} entries -> {root}/official.safetensors")
    for k, v in tensors.items():
        print(f"  {k:16s} {tuple(v.shape)}")


if __name__ == "__main__":
    main()
