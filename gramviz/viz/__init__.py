"""Plotly figures of GRAM's geometry and of embedding alignment.

Every function takes tensors or arrays (or a model's embeddings) and returns a
``plotly.graph_objects.Figure`` (the explorer a notebook widget); none calls ``show()`` or keeps
state, so notebooks, the app and tests share them. Needs the viz extra:
``pip install 'gramviz[viz]'`` (plotly; UMAP, scikit-learn and ipywidgets are imported only by
the functions that use them).

Geometry: `parallelotope`, `gram_heatmap`, `base_height_figure`, `cosine_vs_volume`, `explorer`.
Alignment: `volume_heatmap`, `positives_vs_negatives`, `base_vs_height`, `embedding_map`,
`modality_gap`, `measure_comparison`, `retrieval_results`, `training_curves`.
Tables (HTML, shown as is by notebooks and the app): `ranking_table`.
Exploration dashboard: `selection_map`, `selection_table`, `clip_context`, `neighbours_table`,
`comparison_scatter`; the same as a JupyterLab widget: `dashboard`.
"""

from ._style import MODALITY_COLORS, PALETTE
from .alignment import base_vs_height, positives_vs_negatives, roc_auc, volume_heatmap
from .dashboard import clip_context, comparison_scatter, neighbours_table, selection_map, selection_table
from .dashboard_widget import Dashboard, dashboard
from .explorer import explorer, vectors_from_angles
from .geometry import base_height_figure, cosine_vs_volume, gram_heatmap, parallelotope
from .maps import embedding_map, modality_gap, project
from .ranking import HTMLTable, measure_comparison, rank_agreement, ranking_table, retrieval_results, top_k
from .training import read_log, training_curves

__all__ = [
    "MODALITY_COLORS",
    "PALETTE",
    "Dashboard",
    "HTMLTable",
    "base_height_figure",
    "base_vs_height",
    "clip_context",
    "comparison_scatter",
    "cosine_vs_volume",
    "dashboard",
    "embedding_map",
    "explorer",
    "gram_heatmap",
    "measure_comparison",
    "modality_gap",
    "neighbours_table",
    "parallelotope",
    "positives_vs_negatives",
    "project",
    "rank_agreement",
    "ranking_table",
    "read_log",
    "retrieval_results",
    "roc_auc",
    "selection_map",
    "selection_table",
    "top_k",
    "training_curves",
    "vectors_from_angles",
    "volume_heatmap",
]
