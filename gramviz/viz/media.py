"""Clips playable inside a notebook: videos (with their sound) and audio files embedded in one HTML row.

IPython is imported only when `clip_gallery` is called (it comes with JupyterLab and ipykernel).
"""

from __future__ import annotations

import base64
import html
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["clip_gallery", "media_html"]

_MIME = {".mp4": "video/mp4", ".webm": "video/webm", ".mov": "video/quicktime", ".wav": "audio/wav",
         ".mp3": "audio/mpeg", ".ogg": "audio/ogg", ".flac": "audio/flac", ".m4a": "audio/mp4"}
_MAX_BYTES = 20_000_000  # per file: a notebook that embeds more becomes unwieldy


def media_html(path: str | os.PathLike, title: str = "", width: int = 200) -> str:
    """One ``<figure>`` with the file embedded as a data URI (``<video>`` or ``<audio>`` with controls).

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "beep.wav"
        >>> _ = path.write_bytes(b"RIFF")
        >>> media_html(path, "a beep").count("<audio")
        1
    """
    path = Path(path)
    mime = _MIME.get(path.suffix.lower())
    if mime is None:
        raise ValueError(f"{path}: cannot embed a {path.suffix or 'suffix-less'} file; known: {', '.join(_MIME)}")
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    if path.stat().st_size > _MAX_BYTES:
        raise ValueError(f"{path} is larger than {_MAX_BYTES // 1_000_000} MB: too large to embed in a notebook")
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    tag = "video" if mime.startswith("video") else "audio"
    size = f' width="{int(width)}"' if tag == "video" else f' style="width:{int(width)}px"'
    player = f'<{tag} controls preload="metadata"{size} src="data:{mime};base64,{data}"></{tag}>'
    style = f"font-size:12px;max-width:{int(width)}px"
    caption = f'<figcaption style="{style}">{html.escape(title)}</figcaption>' if title else ""
    return f'<figure style="margin:4px 8px;display:inline-block;vertical-align:top">{player}{caption}</figure>'


def clip_gallery(paths: Sequence[str | os.PathLike], titles: Sequence[str] | None = None, width: int = 200) -> Any:
    """Media files side by side, each playable inline with its title below (videos play their sound).

    Args:
        paths: video or audio files (mp4, webm, mov, wav, mp3, ogg, flac, m4a).
        titles: one caption per file (default the file names).
        width: width of each player in pixels.

    Returns:
        An ``IPython.display.HTML`` object: the last expression of a cell, or ``display(...)`` it.
    """
    try:
        from IPython.display import HTML
    except ImportError as e:  # pragma: no cover - IPython comes with the notebooks extra
        raise ImportError("clip_gallery needs IPython: pip install 'gramviz[notebooks]'") from e
    if not paths:
        raise ValueError("clip_gallery: no files given")
    titles = [Path(p).name for p in paths] if titles is None else list(titles)
    if len(titles) != len(paths):
        raise ValueError(f"clip_gallery: {len(titles)} titles for {len(paths)} files")
    return HTML('<div style="display:flex;flex-wrap:wrap">' + "".join(
        media_html(p, t, width) for p, t in zip(paths, titles)) + "</div>")
