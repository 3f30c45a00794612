"""A self-contained interactive latent map: one plotly scatter per projection, hover to name a clip, click to hear it.

plotly.js is embedded in the page, so it opens from disk with no network; the clips are audio files whose
paths, relative to the page, are written into it (``make_map`` puts them in a folder beside it).
"""
from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from .atomic import write_text
from .map_figures import class_colours

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
body {{ font-family: sans-serif; margin: 1em 2em; }}
.plot {{ width: 100%; height: 640px; }}
#now {{ position: fixed; bottom: 0; right: 0; background: #f4f4f4; padding: 0.4em 0.8em; z-index: 10;
        border-top-left-radius: 6px; font-size: small; }}
#now audio {{ vertical-align: middle; height: 2.2em; }}
</style>
<script>{plotly}</script>
</head>
<body>
<h1>{title}</h1>
<p>{intro} Hover a point to see its clip and {label}; click it to hear the clip.</p>
{divs}
<div id="now"><audio id="player" controls preload="none"></audio> <span id="playing">nothing playing</span></div>
<script>
const CLIPS = {clips};
const NAMES = {names};
const FIGURES = {figures};
const player = document.getElementById("player");
const playing = document.getElementById("playing");
function play(index) {{
  player.src = CLIPS[index];
  playing.textContent = NAMES[index];
  player.play().catch(error => {{ playing.textContent = NAMES[index] + " (press play: " + error.name + ")"; }});
}}
FIGURES.forEach((figure, number) => {{
  const div = document.getElementById("map-" + number);
  Plotly.newPlot(div, figure.data, figure.layout, {{responsive: true, displaylogo: false}}).then(() => {{
    div.on("plotly_click", event => play(event.points[0].customdata[0]));
  }});
}});
</script>
</body>
</html>
"""


def _script_json(value: object) -> str:
    """JSON that cannot end the ``<script>`` it sits in."""
    return json.dumps(value).replace("</", "<\\/")


def _figure(positions: np.ndarray, labels: np.ndarray, names: Sequence[str], title: str, label: str) -> dict:
    """One plotly figure: a trace per class, each point carrying (clip index, clip name, label)."""
    import plotly.graph_objects as go

    classes = sorted(set(labels.tolist()))
    colours = class_colours(classes)
    figure = go.Figure()
    for name in classes:
        chosen = np.flatnonzero(labels == name)
        figure.add_trace(go.Scatter(
            x=positions[chosen, 0].tolist(), y=positions[chosen, 1].tolist(), mode="markers", name=name,
            marker={"size": 7, "color": colours[name], "opacity": 0.85},
            customdata=[[int(i), names[i], name] for i in chosen],
            hovertemplate="%{customdata[1]}<br>" + html.escape(label) + ": %{customdata[2]}<extra></extra>"))
    figure.update_layout(title=title, hovermode="closest", template="plotly_white", legend_title_text=label,
                         xaxis={"showticklabels": False}, yaxis={"showticklabels": False})
    return json.loads(figure.to_json())


def write_map_page(path: str | Path, projections: Mapping[str, np.ndarray], labels: Sequence[str],
                   names: Sequence[str], clips: Sequence[str], *, label: str, title: str, intro: str = "") -> Path:
    """Write the page: ``projections`` maps a plot title to positions ``(N, 2)``; ``clips`` are the clips' audio
    paths relative to the page, ``names`` what hovering shows."""
    from plotly.offline import get_plotlyjs

    labels = np.asarray(labels)
    if not (len(labels) == len(names) == len(clips)):
        raise ValueError(f"labels, names and clips differ in length: {len(labels)}, {len(names)}, {len(clips)}")
    for plot_title, positions in projections.items():
        if positions.shape != (len(labels), 2):
            raise ValueError(f"projection {plot_title!r} has shape {positions.shape}; expected ({len(labels)}, 2)")
    figures = [_figure(positions, labels, names, plot_title, label) for plot_title, positions in projections.items()]
    page = _PAGE.format(
        title=html.escape(title), intro=html.escape(intro), label=html.escape(label),
        plotly=get_plotlyjs().replace("</script", "<\\/script"),
        divs="\n".join(f'<div class="plot" id="map-{number}"></div>' for number in range(len(figures))),
        clips=_script_json(list(clips)), names=_script_json([f"{n} ({lab})" for n, lab in zip(names, labels)]),
        figures=_script_json(figures))
    return write_text(path, page)
