"""What a user uploads or types, checked and embedded: clear errors, and notes for what is left out.

Errors (`gramviz.MediaError` or ValueError, naming the file by its name and saying the problem):
empty, corrupt, truncated or non-media files, a video frame above `MAX_PIXELS`, an "audio" file
without sound, text that is empty, longer than `MAX_TEXT_CHARS`, or without a word the model knows.
Notes (the upload is scored with what is usable, and the page says so beside the score): a video
without a sound track or with a silent one (scored without audio), a "video" file that holds only
sound (used as the audio), a still picture, words the model does not know (ignored: read as
[UNK]), text beyond the model's length. Text is checked through the protocol every gramviz
tokenizer offers (``unknown_words``, ``encode``), word-level or subword.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

from ..media import MediaError, read_clip
from ..modalities import MEDIA

__all__ = ["MAX_PIXELS", "MAX_TEXT_CHARS", "SILENCE_RMS", "MediaInfo", "Upload", "check_text", "encode_upload",
           "ignored_words", "ignored_words_note", "probe_media"]

MAX_PIXELS = 3840 * 2160  # frames above 4K UHD are refused: decoding them costs seconds per frame
MAX_TEXT_CHARS = 1000  # the model reads ~30 words; longer input is almost surely a paste by mistake
SILENCE_RMS = 1e-4  # RMS below -80 dBFS: no sound to align (the world's clips carry noise ~5e-3)
_WORD = re.compile(r"[^\W\d_]+")  # a run of letters of any script: what makes a word


@dataclass
class MediaInfo:
    """What a media file holds, read from its header without decoding."""

    name: str
    has_video: bool
    has_audio: bool
    width: int | None
    height: int | None
    duration: float | None


@dataclass
class Upload:
    """Embeddings of what a user gave, one (D,) vector per usable modality.

    Attributes:
        embeddings: modality -> (D,) unit embedding, for the modalities scored.
        missing: modality -> why it is not scored (not given, no sound track, silent, ...).
        notes: other facts to show (the words ignored, a still picture, a separate audio track...).
        ignored_words: the caption's words the model does not know (read as [UNK]), in order.
    """

    embeddings: dict[str, Tensor] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    ignored_words: list[str] = field(default_factory=list)


def _name(path: str | Path) -> str:
    return Path(path).name


def probe_media(path: str | Path, max_pixels: int = MAX_PIXELS) -> MediaInfo:
    """The streams, frame size and duration of a media file, read without decoding.

    The packets are read (not decoded) to find where each stream ends: a stream that ends well
    before the duration its header declares is a truncated file (an interrupted upload or copy).

    Raises:
        MediaError: no such file, an empty file, not a readable media file, frames above
            ``max_pixels``, or a truncated file (named by its file name, never by a server path).

    Example:
        >>> probe_media("no-such.mp4")
        Traceback (most recent call last):
        ...
        gramviz.media.MediaError: no-such.mp4: no such file
    """
    import av

    p, name = Path(path), _name(path)
    if not p.is_file():
        raise MediaError(f"{name}: no such file")
    if p.stat().st_size == 0:
        raise MediaError(f"{name}: the file is empty")
    try:
        with av.open(str(p)) as container:
            videos = [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
            v = videos[0] if videos else None
            duration = container.duration / 1_000_000 if container.duration is not None else None
            info = MediaInfo(name, v is not None, bool(container.streams.audio),
                             v.codec_context.width if v is not None else None,
                             v.codec_context.height if v is not None else None, duration)
            if info.width and info.height and info.width * info.height > max_pixels:
                raise MediaError(f"{name}: frames of {info.width} x {info.height} pixels are too large; the demo "
                                 "reads videos up to 3840 x 2160 (scale it down, e.g. ffmpeg -vf scale=640:-2)")
            _check_complete(container, name, duration)
    except (av.FFmpegError, UnicodeDecodeError, OSError) as e:
        problem = (getattr(e, "strerror", None) or str(e)).replace(str(p), name)
        raise MediaError(f"{name}: not a readable video or audio file ({problem})") from None
    return info


def _check_complete(container, name: str, duration: float | None) -> None:
    """Raise MediaError when a stream's packets end before 90% of its declared duration."""
    declared = {s.index: float(s.duration * s.time_base) for s in container.streams
                if s.duration and s.time_base and s.type in MEDIA}  # the stream kinds a clip is read from
    ends: dict[int, float] = {}
    for packet in container.demux():
        if packet.pts is not None and packet.time_base is not None:
            end = float((packet.pts + (packet.duration or 0)) * packet.time_base)
            ends[packet.stream.index] = max(ends.get(packet.stream.index, 0.0), end)
    short = [(ends.get(i, 0.0), d) for i, d in declared.items() if ends.get(i, 0.0) < 0.9 * d - 0.05]
    if not declared and duration and ends and max(ends.values()) < 0.9 * duration - 0.05:
        short = [(max(ends.values()), duration)]
    if short:
        got, want = short[0]
        raise MediaError(f"{name}: the file is truncated: its header declares {want:.2f} s but the data ends "
                         f"at {got:.2f} s (upload or copy the complete file)")


def check_text(text: str, model: nn.Module) -> tuple[str, list[str]]:
    """Check a caption typed by a user: returns it stripped, and notes about it (the words the model
    ignored first, see `ignored_words_note`).

    Only the text protocol every gramviz tokenizer offers is used: ``unknown_words(texts)`` and
    ``encode(texts, max_len)``; a word-level tokenizer also has ``vocab``.

    Raises:
        ValueError: empty text, longer than `MAX_TEXT_CHARS`, no word at all, or (word-level
            tokenizer) no word in the model's vocabulary: it knows only its training captions' words.

    Example:
        >>> check_text("   ", None)
        Traceback (most recent call last):
        ...
        ValueError: the text is empty: type a caption, e.g. "a red ball bounces on the grass while birds sing"
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError('the text is empty: type a caption, e.g. "a red ball bounces on the grass while birds '
                         'sing"')
    text = text.strip()
    if len(text) > MAX_TEXT_CHARS:
        raise ValueError(f"the text has {len(text):,} characters; the demo reads at most {MAX_TEXT_CHARS:,} "
                         "(the model reads its first few dozen words anyway)")
    words = _WORD.findall(text.lower())
    if not words:
        raise ValueError("the text has no words (letters of any script): type a caption")
    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is None:
        return text, []
    unknown = ignored_words(text, model)
    vocab = getattr(tokenizer, "vocab", None)
    if vocab is not None and unknown and set(words) <= set(unknown):
        known = [w for w in vocab if not (w.startswith("[") and w.endswith("]"))]
        raise ValueError(f"none of the words of the text ({_listed(unknown, 5)}) is among the {len(known)} words "
                         f"the model knows (e.g. {', '.join(known[:8])}): it reads the English captions of the "
                         "generated world")
    notes = [ignored_words_note(words, unknown)] if unknown else []
    return text, notes + _length_notes(text, model, vocab is not None)


def ignored_words(text: str, model: nn.Module | None) -> list[str]:
    """The distinct words of ``text`` the model's tokenizer does not know (read as [UNK]), in order;
    [] for a subword tokenizer (it spells every word) or a model without one."""
    tokenizer = getattr(model, "tokenizer", None)
    return list(tokenizer.unknown_words([text])) if tokenizer is not None else []


def ignored_words_note(words: list[str], unknown: list[str]) -> str:
    """The sentence shown beside a score or a ranking when the model ignored some words.

    Example:
        >>> ignored_words_note(["a", "dog", "is", "barking"], ["dog", "barking"])
        "ignored words (not in the model's vocabulary): dog, barking — only 'a is' was scored"
    """
    unknown_set = set(unknown)
    read = [w for w in words if w not in unknown_set]
    shown = " ".join(read[:12]) + (" ..." if len(read) > 12 else "")
    return f"ignored words (not in the model's vocabulary): {_listed(unknown, 8)} — only '{shown}' was scored"


def _listed(words: list[str], most: int) -> str:
    return ", ".join(words[:most]) + (", ..." if len(words) > most else "")


def _length_notes(text: str, model: nn.Module, word_level: bool) -> list[str]:
    """A note when the text has more tokens than the model reads (``config.max_text_len``, [CLS] included)."""
    limit, tokenizer = getattr(getattr(model, "config", None), "max_text_len", None), model.tokenizer
    if limit is None or not hasattr(tokenizer, "encode"):
        return []
    _, mask = tokenizer.encode([text], max_len=MAX_TEXT_CHARS + 2)  # every token of the longest text allowed
    extra = int(mask[0].sum()) - limit
    if extra <= 0:
        return []
    if word_level:
        return [f"the model reads the first {limit - 1} words; {extra} more were ignored"]
    return [f"the model reads the first {limit} tokens; {extra} more were ignored"]


def _read_media(model: nn.Module, video: str | None, audio: str | None, up: Upload) -> tuple[Tensor | None, Tensor | None]:
    """Decode the upload as the model needs it; fills ``up.missing`` and ``up.notes``."""
    c = model.config
    vinfo = probe_media(video) if video else None
    ainfo = probe_media(audio) if audio else None
    if vinfo is not None and not vinfo.has_video and not vinfo.has_audio:
        raise MediaError(f"{vinfo.name}: holds neither a video nor an audio stream")
    if ainfo is not None and not ainfo.has_audio:
        raise MediaError(f"{ainfo.name}: has no audio stream; the audio input takes a sound file "
                         "(wav, mp3, flac, ogg, m4a) or a video with sound")
    if vinfo is not None and not vinfo.has_video:
        up.notes.append(f"{vinfo.name} holds no video stream (it is a sound file): "
                        + ("ignored, the separate audio file is used" if ainfo else "its sound is used as the audio"))
    if ainfo is not None and vinfo is not None and vinfo.has_video:
        up.notes.append(f"the sound of {ainfo.name} replaces the clip's own sound track")
    if ainfo is not None and ainfo.has_video:
        up.notes.append(f"{ainfo.name} is a video: only its sound is used as the audio")
    main = video if vinfo is not None and (vinfo.has_video or ainfo is None) else audio
    separate = audio if main == video and ainfo is not None else None
    try:
        clip = read_clip(main, separate, c.num_frames, tuple(c.frame_size), c.sample_rate, c.audio_seconds)
    except MediaError as e:  # name files by their names, not by server paths
        msg = str(e)
        for p in (main, separate):
            if p:
                msg = msg.replace(str(Path(p)), _name(p))
        raise MediaError(msg) from None
    frames, sound = (clip.video if main == video else None), clip.audio
    source = _name(separate or main)
    if frames is None:
        up.missing["video"] = "no video given" if vinfo is None else f"{vinfo.name} holds no video stream"
    elif all(torch.equal(frames[0], f) for f in frames[1:]):
        up.notes.append(f"{vinfo.name} shows one still picture: no motion to see, the video embedding is of that frame")
    if sound is None:
        up.missing["audio"] = f"{source} has no sound track"
    elif float(sound.pow(2).mean().sqrt()) < SILENCE_RMS:
        up.missing["audio"], sound = f"the sound of {source} is silent", None
    elif sound.numel() < c.sample_rate * c.audio_seconds:
        secs = sound.numel() / c.sample_rate
        up.notes.append(f"the sound lasts {secs:.2f} s; the model hears {c.audio_seconds:g} s, the rest is silence")
    return frames, sound


def encode_upload(model: nn.Module, video: str | Path | None = None, audio: str | Path | None = None,
                  text: str | None = None) -> Upload:
    """Check and embed an upload: a clip (video with its sound), a separate audio file, a caption.

    Each argument may be None (or the text empty): that modality is then missing, with the reason
    in ``missing``. A video without (or with silent) sound is scored without audio; a separate
    audio file replaces the clip's sound.

    Args:
        model: a `GRAMModel` (or anything with ``config``, ``encode`` and ``encode_text``) in eval mode.
        video: a video file (or a sound file: used as the audio).
        audio: a separate sound file (or a video, whose sound is used).
        text: a caption.

    Raises:
        MediaError: a file cannot be read or is too large (the message names the file).
        ValueError: the text is unusable (see `check_text`).
    """
    up = Upload()
    if text is not None and str(text).strip():
        clean, notes = check_text(str(text), model)
        up.notes += notes
        up.ignored_words = ignored_words(clean, model)
        up.embeddings["text"] = model.encode_text([clean])[0].float()
    else:
        up.missing["text"] = "no text given"
    if video is None and audio is None:
        up.missing.update(video="no clip given", audio="no clip or audio file given")
        return up
    frames, sound = _read_media(model, str(video) if video else None, str(audio) if audio else None, up)
    batch = {m: x[None] for m, x in (("video", frames), ("audio", sound)) if x is not None}
    if batch:
        with torch.inference_mode():
            emb = model.encode(batch)
        up.embeddings.update({m: emb[m][0].float() for m in MEDIA if m in emb})
    return up
