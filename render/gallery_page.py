"""The gallery's folder and page: one sub-folder per tap, ``gallery.json`` and a self-contained ``index.html``.

Every file is written atomically and a tap's ``portrait.json`` last, so a tap with that file is complete and a
resumed run skips it. ``settings.json`` pins what grew the clips; resuming with other settings is an error rather
than a page that mixes two experiments. The page links the folder's own files (pictures, ``<audio>`` players)
and loads nothing from anywhere else.
"""
from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any, Mapping, Sequence
from urllib.parse import quote

from .atomic import write_json, write_text

PORTRAIT_FILE = "portrait.json"


def tap_folder_name(index: int, tap: str) -> str:
    """A tap's sub-folder: its place in network order, then its name (``03_encoder.blocks.1.relu2``)."""
    return f"{index:02d}_{tap}"


class GalleryFolder:
    """The output folder of one gallery: per-tap sub-folders under ``taps/``, the json and the page."""

    def __init__(self, path: str | Path, settings: Mapping[str, Any]) -> None:
        self.path = Path(path)
        self.settings = json.loads(json.dumps(dict(settings)))      # as it reads back from the json
        pinned = self.path / "settings.json"
        if pinned.is_file():
            before = json.loads(pinned.read_text(encoding="utf-8"))
            changed = sorted(key for key in before.keys() | self.settings.keys()
                             if before.get(key) != self.settings.get(key))
            if changed:
                raise ValueError(f"{self.path} holds a gallery made with other settings ({', '.join(changed)}: "
                                 f"{[before.get(key) for key in changed]}); give the same ones to resume it, or "
                                 "another folder")
        else:
            write_json(pinned, self.settings)

    def tap_path(self, index: int, tap: str) -> Path:
        """The sub-folder of the tap at ``index`` in network order."""
        return self.path / "taps" / tap_folder_name(index, tap)

    def is_done(self, index: int, tap: str) -> bool:
        """Whether the tap's portrait is complete (its ``portrait.json`` exists)."""
        return (self.tap_path(index, tap) / PORTRAIT_FILE).is_file()

    def finish_tap(self, index: int, tap: str, record: Mapping[str, Any]) -> None:
        """Write the tap's ``portrait.json`` (its files must be written already), then the json and the page."""
        write_json(self.tap_path(index, tap) / PORTRAIT_FILE, {"index": index, **record})

    def records(self) -> list[dict[str, Any]]:
        """Every finished tap's record, in network order."""
        found = [json.loads(path.read_text(encoding="utf-8"))
                 for path in (self.path / "taps").glob(f"*/{PORTRAIT_FILE}")]
        return sorted(found, key=lambda record: record["index"])

    def write_summary(self, summary: Mapping[str, Any], title: str) -> tuple[Path, Path]:
        """``gallery.json`` (settings, ``summary`` and every finished tap) and ``index.html``."""
        records = self.records()
        gallery = write_json(self.path / "gallery.json", {"settings": self.settings, **summary, "taps": records})
        page = write_text(self.path / "index.html", gallery_html(title, self.settings, records))
        return gallery, page


def _number(value: Any) -> str:
    return "–" if value is None else f"{value:.4g}" if isinstance(value, float) else html.escape(str(value))


def _media(folder: str, files: Mapping[str, str], caption: str) -> str:
    """A picture and a player of one tap's files, with a caption."""
    image = quote(f"{folder}/{files['figure']}")
    audio = quote(f"{folder}/{files['audio']}")
    return (f'<figure><img src="{image}" alt="{html.escape(caption)}"><figcaption>{html.escape(caption)}'
            f'</figcaption><audio controls preload="auto" src="{audio}"></audio></figure>')


def _tap_section(record: Mapping[str, Any]) -> str:
    """One tap: its title and name, the grown clip's scaleogram and player, the auralised clip, the scores."""
    folder = f"taps/{record['folder']}"
    shifted = ", ".join(f"{shift} s: {_number(value)}" for shift, value in record["shifted_scores"].items())
    rows = [("mean activation on silence", _number(record["silence_score"])),
            ("on the grown clip", _number(record["score"])),
            ("gain over silence", _number(record["gain"])),
            ("under time shifts", shifted),
            ("gain kept under shifts", _number(record["kept_under_shift"])),
            ("meets the aim (10x, half kept)", "yes" if record["meets_aim"] else "no"),
            ("seconds", _number(record["seconds"]))]
    table = "".join(f"<tr><th>{name}</th><td>{value}</td></tr>" for name, value in rows)
    parts = [_media(folder, record["files"], "the clip grown from silence, as the model hears it")]
    if record.get("auralised"):
        parts.append(_media(folder, record["auralised"]["files"],
                            "the given clip heard through this tap: clip, mask, result"))
    return (f'<section id="{html.escape(record["tap"])}"><h2>{html.escape(record["title"])}</h2>'
            f'<p><code>{html.escape(record["tap"])}</code></p><div class="media">{"".join(parts)}</div>'
            f"<table>{table}</table></section>")


_STYLE = """body{font-family:sans-serif;margin:2em;max-width:80em;color:#222}
section{border-top:1px solid #ccc;padding:1em 0}figure{display:inline-block;margin:0 1em 1em 0;vertical-align:top}
img{display:block;max-width:100%;image-rendering:pixelated}audio{display:block;margin-top:.3em}
figcaption{font-size:.85em;color:#555}th{text-align:left;font-weight:normal;padding-right:1em}"""


def gallery_html(title: str, settings: Mapping[str, Any], records: Sequence[Mapping[str, Any]]) -> str:
    """The page: a heading, the settings, and one section per finished tap in network order."""
    listed = "".join(f"<li>{html.escape(str(key))}: {html.escape(json.dumps(value))}</li>"
                     for key, value in settings.items())
    sections = "".join(_tap_section(record) for record in records)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,">'
            f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
            f"<h1>{html.escape(title)}</h1><p>For every tap in network order: the clip grown from silence that "
            f"maximises its mean activation, its scaleogram (low frequencies at the bottom), and its scores.</p>"
            f"<details><summary>settings</summary><ul>{listed}</ul></details>{sections}</body></html>\n")
