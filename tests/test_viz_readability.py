"""Every public figure of gramviz.viz, rendered in Chromium at a notebook cell's width (900 px) and
a half-width app column's (600 px): no two text boxes overlap and none is clipped by the figure's
edge (`readability.py`; a new figure is checked by adding one line to its registry)."""

import shutil
from pathlib import Path

import pytest

pytest.importorskip("plotly")
pytest.importorskip("playwright")

import readability  # noqa: E402

pytestmark = [
    pytest.mark.skipif(not Path(readability.CHROMIUM).exists() and shutil.which("chromium") is None,
                       reason=f"no Chromium at {readability.CHROMIUM}: the readability check needs a real browser "
                              "(CI installs Debian's chromium)"),
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]
FIGURES = readability.figures()


@pytest.fixture(scope="module")
def renderer():
    r = readability.Renderer()
    yield r
    r.close()


@pytest.mark.parametrize("name", list(FIGURES))
def test_the_figure_is_readable_at_notebook_and_app_widths(renderer, name):
    fig = FIGURES[name]()
    found = {f"{width} px": renderer.check(fig, width) for width in readability.WIDTHS.values()}
    assert not any(found.values()), f"{name}: {found}"


def test_the_check_catches_overlapping_and_clipped_text(renderer):
    import plotly.graph_objects as go

    fig = go.Figure(go.Scatter(x=[0, 1], y=[0, 1]))
    fig.add_annotation(x=0.5, y=0.5, text="two labels in one place", showarrow=False)
    fig.add_annotation(x=0.5, y=0.5, text="drawn on top of each other", showarrow=False)
    fig.update_layout(title="A title far too long for a half-width column of the app: it runs past the figure's "
                            "right edge and is cut")
    found = renderer.check(fig, 600)
    assert any(p.startswith("overlap: 'two labels in one place'") for p in found)
    assert any(p.startswith("clipped at the right edge: 'A title far too long") for p in found)
    wide = go.Figure(go.Scatter(x=[0, 1], y=[0, 1]), layout={"width": 800})
    assert "the figure is 800 px wide in a 600 px column" in renderer.check(wide, 600)
    assert renderer.check(go.Figure(go.Scatter(x=[0, 1], y=[0, 1]), layout={"title": "short"}), 600) == []
