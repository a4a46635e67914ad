"""What the exploration dashboard shows, as pure functions of (embeddings, metadata, selection).

A gallery is ``{"text": (N, D), "video": (M, D), "audio": (M, D)}`` with text row i belonging to
clip ``caption_clips[i]`` (`gramviz.embeddings.EmbeddingMetadata.text_clips`). The app's Explore tab,
the notebook widget (`gramviz.viz.dashboard`) and the tests share these functions:

* `clip_metrics`: one row per clip: the volume of (first caption, video, audio), its base and
  height, the rank of the clip's own caption when the clip queries all captions, the rank of the
  clip when its first caption queries all clips, the nearest other clip, the video-audio cosine
  and the least aligned modality;
* `clips_in_box`, `clips_in_lasso`, `filter_clips`: selections;
* `inspect_clip`: one clip's Gram matrix, base and height, its nearest clips by volume and by
  cosine side by side, and which modality lies farthest from the others' span;
* `compare_metrics`: the same gallery under two models, the clips where they disagree most first;
* `selection_rows`, `write_rows`: the table of a selection, and its CSV or JSONL export.

Volumes are of unit vectors (embeddings are normalised first), so they lie in [0, 1]: 0 when the
three are collinear (aligned), 1 when mutually orthogonal.
"""

from .compare import Comparison, compare_metrics, selection_rows, write_rows
from .core import (
           ORDER,
           ClipInspection,
           ClipMetrics,
           clip_metrics,
           clips_in_box,
           clips_in_lasso,
           filter_clips,
           inspect_clip,
)

__all__ = ["ClipInspection", "ClipMetrics", "Comparison", "ORDER", "clip_metrics", "clips_in_box", "clips_in_lasso",
           "compare_metrics", "filter_clips", "inspect_clip", "selection_rows", "write_rows"]
