"""Video frames: a background, an optional silent distractor, the moving object and pixel noise.

Shapes are drawn from signed distances (negative inside), which gives one-pixel anti-aliased
edges cheaply. A spot on the object makes rotation visible even for a circle.
"""

from __future__ import annotations

import numpy as np

from .config import WorldConfig
from .factors import COLOURS, SHAPES, Factors
from .motion import pose

__all__ = ["RADII", "render_background", "render_frames", "object_track"]

RADII = {"small": 0.09, "medium": 0.14, "large": 0.2}  # object radius as a fraction of the frame
FLOOR = 0.9  # the floor a bouncing object hits, as a fraction of the frame height
JUMP = 0.4  # bounce apex height, fraction of the frame
DISTRACTOR_RADIUS = 0.07


def _polygon_sdf(px: np.ndarray, py: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """Signed distance from points to a closed polygon (V, 2); negative inside."""
    dist2 = np.full(px.shape, np.inf, dtype=np.float32)
    sign = np.ones(px.shape, dtype=np.float32)
    for (ax, ay), (bx, by) in zip(vertices, np.roll(vertices, -1, axis=0)):
        ex, ey, wx, wy = bx - ax, by - ay, px - ax, py - ay
        h = np.clip((wx * ex + wy * ey) / (ex * ex + ey * ey), 0, 1)
        dist2 = np.minimum(dist2, (wx - ex * h) ** 2 + (wy - ey * h) ** 2)
        crosses = (py >= ay) == (py < by)  # the edge spans the point's row
        left = (ex * wy > ey * wx) == (py >= ay)
        sign = np.where(crosses & left, -sign, sign)
    return sign * np.sqrt(dist2)


def _shape_sdf(shape: str, px: np.ndarray, py: np.ndarray, r: float, angle: float) -> np.ndarray:
    """Signed distance to ``shape`` of nominal radius r centred at 0, rotated by ``angle``."""
    if shape == "circle":
        return np.hypot(px, py) - np.float32(r)
    c, s = np.float32(np.cos(angle)), np.float32(np.sin(angle))
    qx, qy = c * px + s * py, -s * px + c * py  # rotate the points instead of the shape
    if shape == "square":
        dx, dy = np.abs(qx) - 0.85 * r, np.abs(qy) - 0.85 * r
        return np.hypot(np.maximum(dx, 0), np.maximum(dy, 0)) + np.minimum(np.maximum(dx, dy), 0)
    if shape == "triangle":
        k = np.arange(3)
        radius = np.full(3, 1.15 * r)
    else:  # star: ten vertices alternating between outer and inner radius
        k = np.arange(10) / 2
        radius = np.where(np.arange(10) % 2 == 0, 1.2 * r, 0.5 * r)
    theta = -np.pi / 2 + 2 * np.pi * k / (3 if shape == "triangle" else 5)
    return _polygon_sdf(qx, qy, np.stack([radius * np.cos(theta), radius * np.sin(theta)], 1).astype(np.float32))


def _draw(img: np.ndarray, shape: str, cx: float, cy: float, r: float, angle: float, rgb: np.ndarray) -> None:
    """Composite a shape with a darker rim and an off-centre spot onto img (H, W, 3) in place."""
    size = img.shape[0]
    reach = 1.3 * r + 2
    x0, x1 = max(int(cx - reach), 0), min(int(cx + reach) + 1, size)
    y0, y1 = max(int(cy - reach), 0), min(int(cy + reach) + 1, size)
    if x0 >= x1 or y0 >= y1:
        return
    px = (np.arange(x0, x1, dtype=np.float32) + 0.5 - cx)[None, :]  # pixel centres, broadcast (1, w)
    py = (np.arange(y0, y1, dtype=np.float32) + 0.5 - cy)[:, None]  # (h, 1)
    px, py = np.broadcast_arrays(px, py)
    d = _shape_sdf(shape, px, py, r, angle)
    spot_x, spot_y = 0.35 * r * np.sin(angle), -0.35 * r * np.cos(angle)
    d_spot = np.hypot(px - spot_x, py - spot_y) - 0.15 * r
    shade = 1 - 0.3 * np.clip(d + 2, 0, 1) - 0.45 * np.clip(0.5 - d_spot, 0, 1)  # rim, spot
    colour = rgb.astype(np.float32)[None, None, :] * shade[..., None]
    alpha = np.clip(0.5 - d, 0, 1)[..., None].astype(np.float32)
    crop = img[y0:y1, x0:x1]
    crop += alpha * (colour - crop)


def render_background(background: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """(size, size, 3) float background in [0, 1]; textures vary with rng."""
    y, x = np.mgrid[0:size, 0:size] / size  # (H, W) in [0, 1)
    vertical = y[..., None]
    grain = rng.normal(0, 1, (size, size, 1))

    def gradient(top, bottom):
        return np.array(top) + (np.array(bottom) - np.array(top)) * vertical

    if background == "dark":
        return gradient((0.05, 0.05, 0.08), (0.14, 0.14, 0.18)) + 0.01 * grain
    if background == "grass":
        blades = np.repeat(rng.normal(0, 1, (size // 4 + 1, size, 1)), 4, axis=0)[:size]  # vertical streaks
        return gradient((0.25, 0.5, 0.18), (0.12, 0.34, 0.1)) + 0.04 * blades + 0.02 * grain
    if background == "sand":
        ripple = np.sin(2 * np.pi * (12 * y + 0.6 * np.sin(2 * np.pi * (3 * x + rng.random()))))
        return gradient((0.88, 0.78, 0.58), (0.78, 0.66, 0.45)) + 0.03 * ripple[..., None] + 0.02 * grain
    if background == "sky":
        cx, cy = rng.uniform(0.2, 0.8), rng.uniform(0.1, 0.35)
        cloud = np.exp(-(((x - cx) / 0.2) ** 2 + ((y - cy) / 0.07) ** 2))[..., None]
        sky = gradient((0.3, 0.55, 0.92), (0.68, 0.83, 0.98))
        return sky + 0.6 * cloud * (1 - sky)
    if background == "sea":
        waves = np.sin(2 * np.pi * (14 * y + 0.25 * np.sin(2 * np.pi * (2 * x + rng.random()))))
        return gradient((0.08, 0.36, 0.62), (0.03, 0.2, 0.42)) + 0.04 * waves[..., None] + 0.01 * grain
    if background == "brick":
        rows = np.floor(y * 12)
        cols = np.floor(x * 6 + 0.5 * (rows % 2))
        mortar = ((y * 12) % 1 < 0.12) | ((x * 6 + 0.5 * (rows % 2)) % 1 < 0.05)
        tint = rng.normal(0, 0.04, (13, 8))[rows.astype(int), cols.astype(int) % 8]
        brick = np.array([0.6, 0.26, 0.18]) + tint[..., None]
        return np.where(mortar[..., None], np.array([0.72, 0.7, 0.66]), brick) + 0.015 * grain
    raise ValueError(f"background must be one of the known backgrounds, got {background!r}")


def object_track(factors: Factors, config: WorldConfig, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Per-frame object centre ``x``, ``y`` and ``radius`` (pixels) and ``angle`` (radians).

    Frame k shows the instant k / fps, the time at which a player presents it. `render_frames`
    takes the track's draws first from its rng, so for a sample (seed, split, i) the rendered
    track is ``object_track(factors, config, sample_rng(seed, split, i, 2))``.
    """
    size = config.size
    t = np.arange(config.frames) / config.fps
    p = pose(factors, t)
    radius = RADII[factors.size] * size * p["scale"]
    base_radius = RADII[factors.size] * size
    if factors.motion == "sliding":
        x = size / 2 + p["shift"] * max(0.45 * size - base_radius, 0.05 * size)
    else:
        x = np.full_like(t, rng.uniform(0.35, 0.65) * size)
    if factors.motion == "bouncing":
        y = FLOOR * size - base_radius - p["lift"] * JUMP * size
    else:
        y = np.full_like(t, rng.uniform(0.42, 0.58) * size)
    return {"x": x, "y": y, "radius": radius, "angle": p["angle"]}


def render_frames(factors: Factors, config: WorldConfig, rng: np.random.Generator) -> np.ndarray:
    """(T, H, W, 3) uint8 frames of one sample; nuisances (textures, positions, noise) from rng."""
    size = config.size
    track = object_track(factors, config, rng)  # first draws from rng: see object_track
    background = render_background(factors.background, size, rng).astype(np.float32)
    rgb = np.array(COLOURS[factors.colour]) / 255
    if factors.distractor:
        d_shape = SHAPES[int(rng.integers(len(SHAPES)))]
        others = [c for c in COLOURS if c != factors.colour]
        d_rgb = np.array(COLOURS[others[int(rng.integers(len(others)))]]) / 255
        d_x, d_y = rng.uniform(0.15, 0.85) * size, rng.uniform(0.12, 0.3) * size
        drift = rng.choice([-1.0, 1.0]) * 0.15 * size
    frames = np.repeat(background[None], config.frames, axis=0)  # (T, H, W, 3) float32
    for k in range(config.frames):
        if factors.distractor:
            shift = drift * (k / max(config.frames - 1, 1) - 0.5)
            _draw(frames[k], d_shape, d_x + shift, d_y, DISTRACTOR_RADIUS * size, 0.0, d_rgb)
        _draw(frames[k], factors.shape, track["x"][k], track["y"][k], track["radius"][k], track["angle"][k], rgb)
    # grey (luminance) sensor noise: one draw per pixel and frame
    frames += rng.standard_normal((config.frames, size, size, 1), dtype=np.float32) * np.float32(config.video_noise)
    frames *= 255
    frames += 0.5
    return np.clip(frames, 0, 255, out=frames).astype(np.uint8)
