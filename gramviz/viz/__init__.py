"""Plotly figures of GRAM's geometry and of embedding alignment.

Every function takes tensors or arrays (or a model's embeddings) and returns a
``plotly.graph_objects.Figure``; none calls ``show()`` or keeps state, so notebooks, the app and
tests share them. Needs the viz extra: ``pip install 'gramviz[viz]'`` (plotly; UMAP and
scikit-learn are imported only by the functions that use them).
"""

from ._style import MODALITY_COLORS, PALETTE

__all__ = ["MODALITY_COLORS", "PALETTE"]
