"""Starting the browser demo: score uploaded clips and captions with GRAM, search a gallery, map it.

    gramviz demo [--host 127.0.0.1] [--port 7860] [--model NAME_OR_DIR] [--gallery DIR] [--share]
                 [--compare MODEL_OR_EMBEDDING_FILE]
    python app.py [...]  (the same)

This module only assembles the tabs (``tab_*.py``) and launches; every callback calls library
functions of gramviz.app. On first start the gallery folder (default data/gallery) is
generated from the world's test split and embedded; both are cached for later starts. A
``.safetensors`` embedding file of any model (any dimension) is served as it is. The API endpoints
/score, /search_by_text, /search_by_clip, /search_by_caption and /captions_of_clip are documented
in docs/app.md. ``--compare`` loads a second model (or embedding file of the gallery) into the
Explore tab's two-model panel of every page.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
import time
from collections.abc import Sequence

__all__ = ["add_arguments", "build_demo", "launch_options", "main", "parse_args", "run"]

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

CSS = """
#search-videos video { max-height: 200px; }
#score-summary, #search-status { min-height: 2em; }
"""  # the Explore tab's rules follow, from gramviz.app.explore_bridge


def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of ``gramviz demo`` (and ``python app.py``)."""
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument("--model", default="world-small",
                   help="a bundled model name or a model folder (default world-small)")
    p.add_argument("--gallery", default="data/gallery",
                   help="a folder of clips: with captions.jsonl, or any video and audio files without captions "
                        "(generated from the world's test split if it does not exist); an annotation file; or a "
                        ".safetensors embedding file of any model and dimension (default data/gallery)")
    p.add_argument("--gallery-size", type=int, default=150, help="clips generated for a new gallery (default 150)")
    p.add_argument("--share", action="store_true", help="also serve through a public Gradio share link")
    p.add_argument("--max-file-size", default="50mb", help="largest upload accepted (default 50mb)")
    p.add_argument("--allow-loading", action="store_true",
                   help="allow loading models and galleries from the page even when shared or bound beyond localhost")
    p.add_argument("--compare", default=None, metavar="MODEL_OR_EMBEDDING_FILE",
                   help="a second model (bundled name or folder, e.g. runs/study/pairwise/seed-0/final from "
                        "`make compare-example`) or a .safetensors embedding file of the gallery's clips, compared "
                        "with the first in the Explore tab")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads per request (default 1: requests run side by side instead)")
    return p


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line. Example: ``parse_args(["--port", "7861"]).port == 7861``."""
    parser = argparse.ArgumentParser(description="The gramviz browser demo (GRAM: score, search, explore).")
    return add_arguments(parser).parse_args(argv)


def _is_local(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def build_demo(state, compare: str | None = None):
    """The Blocks of the app: a header and one tab per module, with the request queue; ``compare``
    is the Explore tab's second model, loaded in every new page."""
    import gradio as gr

    from . import tab_explore, tab_model, tab_score, tab_search

    with gr.Blocks(title="gramviz: GRAM demo", analytics_enabled=False) as demo:
        gr.Markdown("## gramviz: multimodal alignment by the Gramian volume (GRAM, ICLR 2025)")
        with gr.Tabs():
            with gr.Tab("Score", id="score"):
                tab_score.render(state, demo)
            with gr.Tab("Search", id="search") as search_tab:
                search = tab_search.render(state, demo)
            with gr.Tab("Explore", id="explore"):
                explore = tab_explore.render(state, demo, compare=compare)
            with gr.Tab("Model", id="model"):
                tab_model.render(state, demo, after_load=[search, explore])
        # another user may have loaded another gallery since this page loaded: fit the tab to it
        search_tab.select(search[0], search[1], search[2], api_visibility="private", queue=False)
    # two media decodes at a time (uploads), four callbacks of any kind; a bounded waiting line
    demo.queue(default_concurrency_limit=4, max_size=256)
    return demo


def launch_options(state, args: argparse.Namespace) -> dict:
    """Keyword arguments of ``demo.launch``: where to bind, what to serve, limits, look."""
    import gradio as gr

    from .explore_bridge import BRIDGE_JS
    from .explore_bridge import CSS as EXPLORE_CSS

    _, _, gallery = state.snapshot()
    return dict(server_name=args.host, server_port=args.port, share=args.share,
                allowed_paths=[str(p) for p in gallery.media_folders()], max_file_size=args.max_file_size,
                show_error=True, ssr_mode=False, theme=gr.themes.Soft(primary_hue="orange"), css=CSS + EXPLORE_CSS,
                js=BRIDGE_JS)


def run(args: argparse.Namespace) -> int:
    """Start the demo with parsed options and serve until stopped; returns the exit status (2 with
    a message when the model or gallery is unusable)."""
    start = time.perf_counter()
    import torch

    from .state import DemoState, describe_match

    torch.set_num_threads(max(1, args.threads))
    allow = args.allow_loading or (_is_local(args.host) and not args.share)
    try:
        state = DemoState.start(args.model, args.gallery, args.gallery_size, allow_loading=allow)
        if args.compare:  # embedded (or read) now, so every page shows it at once
            from .explore_compare import second_gallery

            model, name, gallery = state.snapshot()
            second_gallery(gallery, args.compare, model, name)
    except (ValueError, OSError) as e:
        print(f"gramviz demo: error: {e}", file=sys.stderr)
        return 2
    demo = build_demo(state, compare=args.compare)

    def serve(folders):
        demo.allowed_paths.extend(str(f) for f in folders if str(f) not in demo.allowed_paths)

    state.on_new_folders = serve
    _, _, gallery = state.snapshot()
    demo.launch(prevent_thread_lock=True, **launch_options(state, args))
    for note in gallery.notes:
        print(f"note: {note}", flush=True)
    print(f"gallery {gallery.source}: {gallery.n_clips} clips, {describe_match(gallery)}; serving {demo.local_url} "
          f"{time.perf_counter() - start:.1f} s after start", flush=True)
    demo.block_thread()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python app.py`` / ``python -m gramviz.app.launch``: parse the options and `run`."""
    return run(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
