"""Evaluation as the paper does it, every score from `gramviz.score_matrix` so any measure can rank.

- `evaluate` (``evaluate.py``): embed a dataset with a model, then every metric; the entry point.
- `evaluate_embeddings` (``evaluate.py``): every metric from embeddings of any model.
- ``embedding.py``: `embed_dataset` (what `gramviz.save_embeddings` stores) and `open_dataset`.
- ``sharded.py``: `embed_to_file`, embedding into a file in resumable parts, shared by ``torchrun`` ranks.
- ``retrieval.py``: the six retrieval directions and how missing modalities are treated.
- ``classification.py``: zero-shot classification with class prompts, the confusion matrix.
- ``rerank.py``: re-ranking the top candidates by a DAM head.
- ``report.py``: `format_table`, the metrics as a table.

Example:
    >>> model = gramviz.load_model("world-small")  # doctest: +SKIP
    >>> print(format_table(evaluate(model, open_dataset("data/world/test", model))))  # doctest: +SKIP
"""

from ..models import clip_settings
from .classification import class_prompts, confusion, encode_class_prompts
from .embedding import embed_dataset, open_dataset
from .evaluate import evaluate, evaluate_embeddings
from .report import format_table
from .sharded import dataset_fingerprint, embed_to_file
from .rerank import DAM_TOP_K
from .retrieval import DIRECTIONS, METRICS

__all__ = [
    "DAM_TOP_K",
    "DIRECTIONS",
    "METRICS",
    "class_prompts",
    "clip_settings",
    "confusion",
    "dataset_fingerprint",
    "embed_dataset",
    "embed_to_file",
    "encode_class_prompts",
    "evaluate",
    "evaluate_embeddings",
    "format_table",
    "open_dataset",
]
