"""API endpoints that search a gallery with its own rows: ``/search_by_caption`` and ``/captions_of_clip``.

They need no model, so they work on a gallery from any model's embedding file (e.g. GRAM's official
512-d features), whatever the loaded model is. Errors come back as `gr.Error` (the client's
``AppError``) whose message says what is wrong and what is available instead.

    client.predict(17, 5, "volume", api_name="/search_by_caption")        # caption row 17 -> clips
    client.predict("a red ball bouncing", 5, "volume", api_name="/search_by_caption")   # its text
    client.predict("test-000004", 5, "volume", api_name="/captions_of_clip")  # a clip id -> captions
"""

from __future__ import annotations

import gradio as gr

from .searching import captions_of_clip, endpoint_results, search_by_caption
from .state import DemoState
from .ui import user_errors

__all__ = ["register_api"]


def register_api(state: DemoState) -> None:
    """Add the two endpoints to the Blocks being built (call inside ``gr.Blocks``)."""

    @user_errors
    def search_by_caption_api(caption: str | int, k: int = 5, measure: str = "volume") -> list[dict]:
        """The k gallery clips that best align with one of the gallery's captions, ranked by its own embedding.

        Args:
            caption: a caption row (int) or the text of one of the gallery's captions; other text
                is embedded by the loaded model when it shares the gallery's space.
            k: results, 1 to 100.
            measure: volume (GRAM), cosine_pairwise, cosine_fused, symile or triangle.
        """
        model, _, gallery = state.snapshot()
        return endpoint_results(search_by_caption(gallery, caption, k, measure, model=model))

    @user_errors
    def captions_of_clip_api(clip: str | int, k: int = 5, measure: str = "volume") -> list[dict]:
        """The k gallery captions that best align with one of the gallery's clips, by its own embeddings
        (an empty list for a gallery without captions).

        Args:
            clip: the clip's id in the gallery (or its row number, an int).
            k: results, 1 to 100.
            measure: volume (GRAM), cosine_pairwise, cosine_fused, symile or triangle.
        """
        _, _, gallery = state.snapshot()
        return endpoint_results(captions_of_clip(gallery, clip, k, measure))

    gr.api(search_by_caption_api, api_name="search_by_caption")
    gr.api(captions_of_clip_api, api_name="captions_of_clip")
