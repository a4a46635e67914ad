"""log_mel against a NumPy STFT with torchaudio's mel filterbank; resize_frames against PIL."""

import math

import numpy as np
import pytest
import torch

from gramviz.features import log_mel, resize_frames


def numpy_log_mel(x: np.ndarray, sr: int, n_fft: int, hop: int, n_mels: int, floor: float) -> np.ndarray:
    """Centred, reflect-padded STFT with a periodic Hann window, power, HTK mel filters, log."""
    import torchaudio.functional as AF

    padded = np.pad(x, n_fft // 2, mode="reflect")
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    frames = np.stack([padded[i : i + n_fft] * window for i in range(0, padded.size - n_fft + 1, hop)])
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2  # (frames, n_fft // 2 + 1)
    fb = AF.melscale_fbanks(n_fft // 2 + 1, 0.0, sr / 2, n_mels, sr).double().numpy()  # (freqs, mels)
    return np.log(power @ fb + floor).T


def test_log_mel_matches_a_numpy_reference():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(8000) * 0.3
    ours = log_mel(torch.from_numpy(x), sample_rate=16000, n_mels=40)  # float64 in, float64 out
    ref = numpy_log_mel(x, 16000, 400, 160, 40, 1e-6)
    assert ours.shape == ref.shape == (40, 8000 // 160 + 1)
    # torchaudio keeps its Hann window and filters in float32: 1e-6 relative in power
    np.testing.assert_allclose(ours.numpy(), ref, rtol=0, atol=1e-5)


def test_log_mel_window_and_hop_follow_the_sample_rate():
    x = torch.randn(8000, dtype=torch.float64)
    ours = log_mel(x, sample_rate=8000, n_mels=32, window_seconds=0.032, hop_seconds=0.016)
    ref = numpy_log_mel(x.numpy(), 8000, 256, 128, 32, 1e-6)
    np.testing.assert_allclose(ours.numpy(), ref, rtol=0, atol=1e-5)


@pytest.mark.parametrize("hz", [300.0, 1000.0, 3000.0])
def test_a_pure_tone_peaks_in_the_mel_band_holding_its_frequency(hz):
    sr, n_mels = 16000, 64
    t = torch.arange(sr) / sr
    spec = log_mel(torch.sin(2 * math.pi * hz * t), sample_rate=sr, n_mels=n_mels)
    # HTK mel band centres, evenly spaced in mel between 0 and Nyquist
    mel = lambda f: 2595 * math.log10(1 + f / 700)  # noqa: E731
    centres = [700 * (10 ** (m / 2595) - 1) for m in np.linspace(0, mel(sr / 2), n_mels + 2)[1:-1]]
    expected = min(range(n_mels), key=lambda b: abs(centres[b] - hz))
    assert abs(int(spec.mean(dim=1).argmax()) - expected) <= 1


def test_log_mel_batches_equal_single_calls_and_silence_hits_the_floor():
    x = torch.randn(3, 4000)
    batch = log_mel(x)
    assert batch.shape == (3, 64, 26) and batch.dtype == torch.float32
    for i in range(3):
        torch.testing.assert_close(batch[i], log_mel(x[i]))
    silence = log_mel(torch.zeros(1000), floor=1e-4)
    assert torch.allclose(silence, torch.full_like(silence, math.log(1e-4)))


def test_log_mel_rejects_bad_audio():
    with pytest.raises(TypeError, match="floating-point"):
        log_mel(torch.zeros(1000, dtype=torch.int16))
    with pytest.raises(ValueError, match=r"\(S,\) or \(B, S\)"):
        log_mel(torch.zeros(2, 2, 1000))
    with pytest.raises(ValueError, match="at least 201"):
        log_mel(torch.zeros(150))
    with pytest.raises(ValueError, match="NaN"):
        log_mel(torch.full((1000,), float("nan")))
    with pytest.raises(ValueError, match="floor"):
        log_mel(torch.zeros(1000), floor=0.0)


def test_resize_frames_matches_pil_bilinear():
    Image = pytest.importorskip("PIL.Image")
    video = torch.rand(2, 3, 48, 64)
    out = resize_frames(video, (20, 27))  # shrink: antialiased
    assert out.shape == (2, 3, 20, 27)
    for t in range(2):
        for c in range(3):
            img = Image.fromarray(video[t, c].numpy(), mode="F").resize((27, 20), Image.BILINEAR)
            np.testing.assert_allclose(out[t, c].numpy(), np.asarray(img), atol=1e-5)


def test_resize_frames_antialiases_and_keeps_range():
    checker = (torch.arange(64)[:, None] + torch.arange(64)[None, :]) % 2  # 1-pixel checkerboard
    video = checker.float().expand(1, 3, 64, 64)
    small = resize_frames(video, (8, 8))
    assert torch.allclose(small, torch.full_like(small, 0.5), atol=1e-3)  # averaged, not aliased
    up = resize_frames(torch.rand(1, 3, 5, 7), (40, 21))
    assert up.min() >= 0 and up.max() <= 1
    same = torch.rand(1, 3, 4, 4)
    assert torch.equal(resize_frames(same, (4, 4)), same)


def test_resize_frames_rejects_bad_input():
    with pytest.raises(ValueError, match=r"\(T, 3, H, W\)"):
        resize_frames(torch.zeros(3, 8, 8), (4, 4))
    with pytest.raises(TypeError, match="floating-point"):
        resize_frames(torch.zeros(1, 3, 8, 8, dtype=torch.uint8), (4, 4))
    with pytest.raises(ValueError, match="positive"):
        resize_frames(torch.zeros(1, 3, 8, 8), (0, 4))
