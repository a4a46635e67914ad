"""Datasets of real clips: annotation readers (JSONL, CSV, GRAM/VAST JSON), a plain folder of media
files without captions, a clip Dataset with missing-modality flags, and the collate function that
batches it.

Example:
    >>> from gramviz.datasets import ClipDataset, ClipSettings
    >>> ds = ClipDataset("clips/captions.jsonl", ClipSettings(num_frames=8))  # doctest: +SKIP
    >>> loader = torch.utils.data.DataLoader(ds, batch_size=16, collate_fn=ds.collate)  # doctest: +SKIP
"""

from .annotations import (
    AUDIO_EXTENSIONS,
    CAPTIONS_FILE,
    VIDEO_EXTENSIONS,
    AnnotationError,
    ClipRecord,
    annotations_path,
    read_annotations,
    read_csv,
    read_gram_json,
    read_jsonl,
)
from .clips import MEDIA_MODALITIES, ClipDataset, ClipSettings, collate_clips, number_classes
from .folder import MEDIA_EXTENSIONS, media_files, read_media_folder

__all__ = [
    "AUDIO_EXTENSIONS",
    "CAPTIONS_FILE",
    "MEDIA_EXTENSIONS",
    "MEDIA_MODALITIES",
    "VIDEO_EXTENSIONS",
    "AnnotationError",
    "ClipDataset",
    "ClipRecord",
    "ClipSettings",
    "annotations_path",
    "collate_clips",
    "media_files",
    "number_classes",
    "read_annotations",
    "read_csv",
    "read_gram_json",
    "read_jsonl",
    "read_media_folder",
]
