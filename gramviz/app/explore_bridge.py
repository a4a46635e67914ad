"""How a box, lasso or click on the Explore tab's Plotly maps reaches Python.

Why a bridge: in Gradio 6, ``gr.Plot`` has no ``select`` event (only ``change``), and the native
``gr.ScatterPlot``'s ``select`` reports an x-interval brush only, neither a 2-D box, a lasso nor the
clips under the pointer. Plotly itself reports all three in the browser: ``plotly_selected`` (box
or lasso: the selected points) and ``plotly_click`` (one point). Every map point carries its clip
index as ``customdata`` (`gramviz.viz.selection_map`), so the browser can name the clips directly.

The mechanism, `BRIDGE_JS` (passed to ``demo.launch(js=...)``, which runs it once when the page
loads):

1. every 250 ms it looks for the Plotly graph div (``.js-plotly-plot``) inside each component of
   `BINDINGS` (by ``elem_id``). Gradio redraws a plot with ``Plotly.react`` on every update, and a
   full redraw replaces the div's event emitter, so the handlers are attached to each emitter
   once (a mark on ``gd._ev``) and again after any redraw;
2. ``plotly_selected`` after a box or lasso the user drew (``plotly_selecting`` came first: Plotly
   also re-emits ``plotly_selected`` when it lays the plot out again, e.g. on a resize) writes
   ``{"clips": [...], "n": counter}`` (the unique customdata ints) into the hidden textbox
   ``#explore-selection``; ``plotly_click`` writes ``{"clip": c, "n": counter}``
   into ``#explore-clicked``. The counter makes every event a new value;
3. it sets the textarea's value with the native setter and dispatches an ``input`` event, which
   updates Gradio's value and fires the textbox's ``change`` event: the Python callbacks listen
   to ``.change`` (a Gradio 6 textbox fires ``input`` only on key presses).

The textboxes are ``visible="hidden"``: in the page (a ``visible=False`` component is not rendered
at all in Gradio 6) but not shown; `CSS` hides them for good measure. Python parses the JSON with
`gramviz.app.explore_views.parse_selection` and `parse_click`.
"""

from __future__ import annotations

import json

__all__ = ["BINDINGS", "BRIDGE_JS", "CLICK_BOX", "CSS", "SELECT_BOX"]

SELECT_BOX, CLICK_BOX = "explore-selection", "explore-clicked"
# plot elem_id -> (textbox written on a box or lasso selection or None, textbox written on a click)
BINDINGS = {
    "explore-map": (SELECT_BOX, CLICK_BOX),
    "explore-map-b": (SELECT_BOX, CLICK_BOX),
    "explore-context": (None, CLICK_BOX),
    "explore-compare-scatter": (None, CLICK_BOX),
}

BRIDGE_JS = """() => {
  const bindings = %s;
  let counter = 0;
  const write = (id, payload) => {
    const box = document.querySelector('#' + id + ' textarea, #' + id + ' input');
    if (!box) return;
    payload.n = ++counter;
    const setter = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(box), 'value').set;
    setter.call(box, JSON.stringify(payload));
    box.dispatchEvent(new Event('input', {bubbles: true}));
  };
  const clipOf = (point) => Array.isArray(point.customdata) ? point.customdata[0] : point.customdata;
  const bind = () => {
    for (const [plot, [selectBox, clickBox]] of Object.entries(bindings)) {
      const gd = document.querySelector('#' + plot + ' .js-plotly-plot');
      if (!gd || !gd._ev || gd._ev.__gramviz) continue;
      gd._ev.__gramviz = true;
      if (selectBox) {
        // only a box or lasso the user drew: plotly also re-emits plotly_selected when it re-lays
        // out the plot (a resize, a redraw), without a plotly_selecting before it
        gd.on('plotly_selecting', () => { gd.__gramvizDrawing = true; });
        gd.on('plotly_selected', (ev) => {
          if (!ev || !gd.__gramvizDrawing) return;
          gd.__gramvizDrawing = false;
          const clips = [...new Set(ev.points.map(clipOf).filter((c) => Number.isInteger(c)))];
          write(selectBox, {clips: clips.sort((a, b) => a - b)});
        });
      }
      gd.on('plotly_click', (ev) => {
        const point = ev && ev.points && ev.points[0];
        const clip = point ? clipOf(point) : null;
        if (Number.isInteger(clip)) write(clickBox, {clip: clip});
      });
    }
  };
  setInterval(bind, 250);
}""" % json.dumps(BINDINGS)

CSS = """
#explore-selection, #explore-clicked { display: none !important; }
#explore-strip video, #explore-disagree video { max-height: 180px; }
#explore-info, #explore-selection-info, #explore-compare-info { min-height: 2em; }
"""
