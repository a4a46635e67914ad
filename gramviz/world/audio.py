"""Audio: the object's tone (timbre from shape, pitch from size, rhythm from motion and speed,
timing from the onset) over an off-screen ambience and an off-screen event, all synthesised.

Everything is float64 until the end; the mix is peak-normalised to `PEAK`.
"""

from __future__ import annotations

import numpy as np

from .config import WorldConfig
from .factors import Factors
from .motion import sound_envelope

__all__ = ["PITCHES", "TIMBRES", "object_sound", "ambience_sound", "offscreen_sound", "render_audio"]

PITCHES = {"small": 880.0, "medium": 440.0, "large": 220.0}  # Hz: smaller objects sound higher
# shape -> (frequency ratio, amplitude) of the partials
TIMBRES: dict[str, tuple[tuple[float, float], ...]] = {
    "circle": ((1, 1.0),),  # sine
    "square": tuple((k, 1 / k) for k in (1, 3, 5, 7, 9, 11)),  # square wave: odd harmonics
    "triangle": tuple((k, 1 / k) for k in range(1, 9)),  # sawtooth: all harmonics
    "star": ((1, 1.0), (2.76, 0.5), (5.4, 0.3), (8.93, 0.2)),  # bell-like, inharmonic
}
PEAK = 0.9
OBJECT_LEVEL = 0.5
AMBIENCE_LEVEL = 0.06  # RMS of the ambience relative to the object's peak level
OFFSCREEN_LEVEL = 0.25


def _oscillator(freq: np.ndarray, partials, sr: int) -> np.ndarray:
    """Sum of partials following a time-varying fundamental ``freq`` (S,); band-limited."""
    phase = 2 * np.pi * np.cumsum(freq) / sr
    out = np.zeros_like(freq)
    for ratio, amp in partials:
        if ratio * freq.max() < 0.45 * sr:  # drop partials that would alias
            out += amp * np.sin(ratio * phase)
    return out


def _band(x: np.ndarray, sr: int, lo: float, hi: float) -> np.ndarray:
    """Band-pass by zeroing FFT bins outside [lo, hi] Hz."""
    spectrum = np.fft.rfft(x)
    hz = np.fft.rfftfreq(x.size, 1 / sr)
    spectrum[(hz < lo) | (hz > hi)] = 0
    return np.fft.irfft(spectrum, n=x.size)


def _rms_normalise(x: np.ndarray, rms: float) -> np.ndarray:
    return x * (rms / max(float(np.sqrt(np.mean(x**2))), 1e-12))


def object_sound(factors: Factors, sr: int, num_samples: int) -> np.ndarray:
    """(S,) the object's sound, peak amplitude 1 while sounding."""
    t = np.arange(num_samples) / sr
    amp, pitch = sound_envelope(factors, t)
    tone = _oscillator(PITCHES[factors.size] * pitch, TIMBRES[factors.shape], sr)
    total = sum(a for _, a in TIMBRES[factors.shape])
    return amp * tone / total


def _chirps(t: np.ndarray, starts, length: float, f0: float, f1: float) -> np.ndarray:
    """Sum of sine sweeps f0 -> f1 Hz, each ``length`` s long with a smooth envelope."""
    out = np.zeros_like(t)
    for s in starts:
        local = t - s
        inside = (local >= 0) & (local < length)
        x = local[inside] / length
        phase = 2 * np.pi * (f0 * local[inside] + 0.5 * (f1 - f0) * length * x**2)
        out[inside] += np.sin(np.pi * x) ** 2 * np.sin(phase)
    return out


def ambience_sound(ambience: str, sr: int, num_samples: int, rng: np.random.Generator) -> np.ndarray:
    """(S,) background sound with RMS 1 (silence for ``quiet``)."""
    t = np.arange(num_samples) / sr
    noise = rng.normal(0, 1, num_samples)
    if ambience == "quiet":
        return np.zeros(num_samples)
    if ambience == "rain":
        drops = np.zeros(num_samples)
        drops[rng.integers(0, num_samples, int(40 * t[-1]))] = rng.uniform(2, 6, int(40 * t[-1]))
        drops = np.convolve(drops, np.exp(-np.arange(64) / 8.0), mode="same") * rng.normal(0, 1, num_samples)
        out = _band(noise, sr, 2000, 7000) + _band(drops, sr, 1000, 6000)
    elif ambience == "wind":
        gust = 0.6 + 0.4 * np.sin(2 * np.pi * rng.uniform(0.2, 0.5) * t + rng.uniform(0, 2 * np.pi))
        out = _band(noise, sr, 60, 600) * gust
    elif ambience == "birds":
        starts = np.sort(rng.uniform(0, t[-1], int(rng.integers(4, 9))))
        out = _chirps(t, starts, 0.09, rng.uniform(3000, 4000), rng.uniform(4500, 6000))
    elif ambience == "crowd":
        voices = sum(
            _band(rng.normal(0, 1, num_samples), sr, 250, 1500)
            * (1 + np.sin(2 * np.pi * rng.uniform(3, 6) * t + rng.uniform(0, 2 * np.pi)))
            for _ in range(4)
        )
        out = voices
    elif ambience == "engine":
        f0 = rng.uniform(45, 70)
        throb = 1 + 0.3 * np.sin(2 * np.pi * rng.uniform(8, 14) * t)
        out = throb * sum(np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 2 * np.pi)) / k for k in range(1, 9))
        out += 0.5 * _rms_normalise(_band(noise, sr, 40, 300), float(np.sqrt(np.mean(out**2))))
    else:
        raise ValueError(f"ambience must be one of the known ambiences, got {ambience!r}")
    return _rms_normalise(out, 1.0)


def offscreen_sound(offscreen: str, sr: int, num_samples: int, rng: np.random.Generator) -> np.ndarray:
    """(S,) an off-screen event at a random time, peak amplitude about 1 (silence for ``none``)."""
    t = np.arange(num_samples) / sr
    start = rng.uniform(0.1, 0.5) * t[-1]
    local = t - start
    on = local >= 0
    if offscreen == "none":
        return np.zeros(num_samples)
    if offscreen == "dog":  # two barks: a falling harmonic stack plus breath noise
        out = np.zeros(num_samples)
        for b in (0.0, rng.uniform(0.25, 0.4)):
            x = local - b
            inside = (x >= 0) & (x < 0.15)
            env = np.where(inside, np.sin(np.pi * np.clip(x / 0.15, 0, 1)) ** 0.5, 0)
            f = rng.uniform(420, 520) * (1 - 0.6 * np.clip(x, 0, 0.15))
            harmonics = sum(np.sin(2 * np.pi * k * f * x) / k for k in range(1, 8))
            out += env * (0.6 * harmonics + 0.8 * _band(rng.normal(0, 1, num_samples), sr, 500, 2500))
    elif offscreen == "phone":  # two rings: a two-tone trill at 20 Hz
        ring = (local % 1.2 < 0.7) & on & (local < 2.4)
        trill = np.where(np.sin(2 * np.pi * 20 * t) > 0, np.sin(2 * np.pi * 1200 * t), np.sin(2 * np.pi * 1500 * t))
        out = ring * trill
    elif offscreen == "bell":  # a church bell: low inharmonic partials with long decays
        f = rng.uniform(280, 340)
        partials = ((0.5, 1.0, 1.6), (1.0, 0.8, 1.2), (1.2, 0.6, 0.9), (1.5, 0.4, 0.7), (2.0, 0.5, 0.6), (2.5, 0.3, 0.4))
        out = on * sum(a * np.exp(-np.maximum(local, 0) / d) * np.sin(2 * np.pi * r * f * local) for r, a, d in partials)
    else:
        raise ValueError(f"offscreen must be one of the known off-screen sounds, got {offscreen!r}")
    return out / max(float(np.abs(out).max()), 1e-12)


def render_audio(factors: Factors, config: WorldConfig, rng: np.random.Generator) -> np.ndarray:
    """(S,) float32 mono waveform of one sample at ``config.sample_rate``, peak `PEAK`."""
    sr, n = config.sample_rate, config.num_samples
    mix = OBJECT_LEVEL * object_sound(factors, sr, n)
    mix += config.ambience_level * AMBIENCE_LEVEL * ambience_sound(factors.ambience, sr, n, rng)
    mix += config.ambience_level * OFFSCREEN_LEVEL * offscreen_sound(factors.offscreen, sr, n, rng)
    if config.audio_noise > 0:
        mix += rng.normal(0, config.audio_noise, n)
    peak = float(np.abs(mix).max())
    return (mix * (PEAK / peak if peak > 0 else 1.0)).astype(np.float32)
