"""The browser demo: everything ``gramviz demo`` (or ``python app.py``) shows, as functions tested
without a browser.

Logic modules (no Gradio import; figures from `gramviz.viz`):

- `gramviz.app.gallery`: a searchable gallery (a folder of clips with captions, or an embedding
  file), its embeddings cached by model and content, the generated world gallery, the cached map.
- `gramviz.app.uploads`: checking and embedding what a user uploads or types.
- `gramviz.app.scoring`: the Score tab's numbers, words and figures.
- `gramviz.app.searching`: text -> clips and clip -> captions, with any measure beside GRAM.
- `gramviz.app.cards`: the model card and the gallery summary in words.
- `gramviz.app.state`: the loaded model and gallery, swapped atomically.

Gradio modules: `gramviz.app.ui` (turning errors into messages in the page), one module per
tab (`tab_score`, `tab_search`, `tab_explore`, `tab_model`), each with ``render(state)``, and
`gramviz.app.launch`, which assembles the tabs and serves them (``main``; ``app.py`` at the
repository root only calls it). Importing this package loads neither Gradio nor Plotly.
"""

__all__: list[str] = []
