"""The browser demo: everything ``gramviz demo`` (or ``python app.py``) shows, as functions tested
without a browser.

Logic modules (no Gradio import; figures from `gramviz.viz`):

- `gramviz.app.gallery_base`: `Gallery` (rows, its exact `ClipIndex`), and whether the loaded
  model's queries live in a gallery's embedding space (`space_mismatch`).
- `gramviz.app.gallery`: a searchable gallery (a folder of clips with or without captions, or an
  embedding file), its embeddings cached by model and content, the generated world gallery, the
  cached map.
- `gramviz.app.gallery_file`: an embedding file of any model and dimension as a gallery, and
  plain words for a truncated or corrupt file.
- `gramviz.app.gallery_folder`: a folder of the user's own clips without captions: its media files
  embedded, the unreadable ones skipped with a note each.
- `gramviz.app.uploads`: checking and embedding what a user uploads or types.
- `gramviz.app.scoring`: the Score tab's numbers, words and figures.
- `gramviz.app.searching`: caption -> clips and clip -> captions, for typed or uploaded queries and
  for the gallery's own rows, with any measure beside GRAM.
- `gramviz.app.picks`: choosing a gallery caption or clip (by row, text or id) and the lists of them.
- `gramviz.app.cards`: the model card and the gallery summary in words.
- `gramviz.app.explore_data`, `explore_views`, `explore_compare`: the Explore dashboard's clip
  metrics, cached map, selection table, clip strip, filter, export, one clip's inspector and the
  comparison with a second model (`gramviz.exploration` and `gramviz.viz` underneath);
  `gramviz.app.explore_bridge`: the script that brings Plotly's box, lasso and click to Python.
- `gramviz.app.state`: the loaded model and gallery, swapped atomically.

Gradio modules: `gramviz.app.ui` (turning errors into messages in the page), one module per
tab (`tab_score`, `tab_search` with `tab_search_api`, `tab_explore` with `explore_panels`, `tab_model`), each with
``render(state, demo)``, and
`gramviz.app.launch`, which assembles the tabs and serves them (``main``; ``app.py`` at the
repository root only calls it). Importing this package loads neither Gradio nor Plotly.
"""

__all__: list[str] = []
