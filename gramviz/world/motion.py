"""The motion timeline shared by video and audio: the physics that ties what is seen to what is heard.

Time runs in cycles of one period (the speed sets it); cycle position u = (t - onset) / period.
Before the onset nothing moves and nothing sounds. Pose and sound are both functions of u:

- bouncing: floor contact at each cycle start, a decaying beep starting at each contact;
- sliding: slides across during the first `SLIDE_FRACTION` of each cycle, a steady tone meanwhile;
- growing: grows during the first `GROW_FRACTION` of each cycle, a rising chirp meanwhile;
- spinning: half a turn per cycle, a tone warbling twice per cycle;
- pulsing: swells and shrinks during the first `PULSE_FRACTION` of each cycle, a tone burst
  with the same envelope.
"""

from __future__ import annotations

import numpy as np

from .factors import Factors

__all__ = ["PERIODS", "SLIDE_FRACTION", "GROW_FRACTION", "PULSE_FRACTION", "event_times", "pose", "sound_envelope"]

PERIODS = {"slow": 1.0, "fast": 0.5}  # seconds per cycle
SLIDE_FRACTION = 0.6
GROW_FRACTION = 0.8
PULSE_FRACTION = 0.3
GROW_FROM = 0.6  # a growing object starts each cycle at this fraction of its size
PULSE_GAIN = 0.3  # a pulsing object swells by this fraction of its size
CHIRP = (0.8, 1.25)  # pitch multipliers at the start and end of a growth: stays within half an octave
WARBLE_DEPTH = 0.06  # relative frequency deviation of a spinning object's tone
BEEP_DECAY = 0.07  # seconds: time constant of a bounce beep
FADE = 0.01  # seconds: attack/release of tones, so that they do not click


def _cycles(factors: Factors, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(u, phase in [0, 1), started) at times t; u is clamped to 0 before the onset."""
    t = np.asarray(t, dtype=np.float64)
    u = np.maximum((t - factors.onset) / PERIODS[factors.speed], 0.0)
    return u, u - np.floor(u), t >= factors.onset


def event_times(factors: Factors, duration: float) -> np.ndarray:
    """Times (s) within [0, duration) at which cycles start: bounces, slides, growths, pulses.

    Example:
        >>> from gramviz.world.factors import sample_factors
        >>> f = sample_factors(0).replace(speed="fast", onset=0.25)
        >>> event_times(f, 1.5).tolist()
        [0.25, 0.75, 1.25]
    """
    period = PERIODS[factors.speed]
    count = int(np.ceil((duration - factors.onset) / period))
    return factors.onset + period * np.arange(max(count, 0))


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def pose(factors: Factors, t: np.ndarray) -> dict[str, np.ndarray]:
    """Dimensionless pose at times t: ``shift`` in [-1, 1] (horizontal), ``lift`` in [0, 1]
    (height above the floor), ``scale`` (size multiplier) and ``angle`` (radians)."""
    u, phase, _ = _cycles(factors, t)
    shift, lift = np.zeros_like(u), np.zeros_like(u)
    scale, angle = np.ones_like(u), np.zeros_like(u)
    if factors.motion == "bouncing":
        lift = 4 * phase * (1 - phase)  # parabola: 0 at each contact
    elif factors.motion == "sliding":
        done = _smoothstep(phase / SLIDE_FRACTION)
        shift = np.where(np.floor(u) % 2 == 0, 2 * done - 1, 1 - 2 * done)  # back and forth
    elif factors.motion == "growing":
        scale = GROW_FROM + (1 - GROW_FROM) * np.minimum(phase / GROW_FRACTION, 1.0)
    elif factors.motion == "spinning":
        angle = np.pi * u
    elif factors.motion == "pulsing":
        scale = 1 + PULSE_GAIN * _pulse(phase)
    return {"shift": shift, "lift": lift, "scale": scale, "angle": angle}


def _pulse(phase: np.ndarray) -> np.ndarray:
    return np.where(phase < PULSE_FRACTION, np.sin(np.pi * np.minimum(phase / PULSE_FRACTION, 1.0)), 0.0)


def _window(seconds_in: np.ndarray, length: float) -> np.ndarray:
    """1 inside [0, length) seconds with FADE-long ramps at both ends, 0 outside."""
    return np.clip(seconds_in / FADE, 0, 1) * np.clip((length - seconds_in) / FADE, 0, 1)


def sound_envelope(factors: Factors, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(amplitude in [0, 1], pitch multiplier) of the object's sound at times t."""
    u, phase, started = _cycles(factors, t)
    period = PERIODS[factors.speed]
    since = phase * period  # seconds since the current cycle started
    pitch = np.ones_like(u)
    if factors.motion == "bouncing":
        amp = np.exp(-since / BEEP_DECAY) * np.clip(since / 0.002, 0, 1)
    elif factors.motion == "sliding":
        amp = _window(since, SLIDE_FRACTION * period)
    elif factors.motion == "growing":
        amp = _window(since, GROW_FRACTION * period)
        lo, hi = CHIRP
        pitch = lo * (hi / lo) ** np.minimum(phase / GROW_FRACTION, 1.0)
    elif factors.motion == "spinning":
        amp = np.clip((np.asarray(t) - factors.onset) / FADE, 0, 1)
        pitch = 1 + WARBLE_DEPTH * np.sin(4 * np.pi * u)
    else:  # pulsing
        amp = _pulse(phase)
    return np.where(started, amp, 0.0), pitch
