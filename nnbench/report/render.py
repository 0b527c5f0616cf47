"""Writing a report: sections of text and tables, and figures, as Markdown and HTML.

Each figure is rendered once per format: an SVG and a PNG file under
``figures/``; the HTML page embeds the very PNG bytes written, so it reads
offline.
"""

from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from nnbench.fileio import atomic_write


@dataclass
class Section:
    heading: str
    text: str = ""
    table: pd.DataFrame | None = None


@dataclass
class Page:
    title: str
    sections: list[Section] = field(default_factory=list)
    figures: list[tuple[str, str, bytes]] = field(default_factory=list)  # name, caption, png
    notes: list[str] = field(default_factory=list)  # what could not be shown, and why

    def add(self, heading: str, text: str = "", table: pd.DataFrame | None = None) -> None:
        self.sections.append(Section(heading, text, table))


def fmt(value: Any, digits: int = 4) -> str:
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return ""
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return f"{value:.{digits}g}"
    return str(value)


def interval(mean: float, low: float, high: float, clipped: bool = False, digits: int = 4) -> str:
    """``0.8353 [0.8240, 0.8460]``, with ``*`` when the interval was cut to the
    metric's range; the mean alone without an interval."""
    if not np.isfinite(mean):
        return ""
    if not (np.isfinite(low) and np.isfinite(high)):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]" + ("*" if clipped else "")


# What Markdown would read as markup in text from users and plugins (option
# values, labels, exception messages): HTML (a "<script>", or a "<!--" that
# hides the rest of the document), a table's cell separator, a code span, a
# link. Each is shown as it is; brackets alone (adam[learning_rate=0.01]) are
# no markup and stay readable.
_MD_SPECIAL = str.maketrans(
    {"\\": "\\\\", "|": "\\|", "`": "\\`", "<": "&lt;", ">": "&gt;", "&": "&amp;"}
)


def md_escape(text: str) -> str:
    """``text`` as Markdown shows it literally, on one line."""
    return " ".join(str(text).split()).translate(_MD_SPECIAL).replace("](", "]\\(")


def markdown_table(table: pd.DataFrame | None) -> str:
    if table is None or table.empty:
        return "(none)\n"
    head = "| " + " | ".join(md_escape(c) for c in table.columns) + " |"
    rule = "| " + " | ".join("---" for _ in table.columns) + " |"
    body = [
        "| " + " | ".join(md_escape(fmt(v)) for v in row) + " |"
        for row in table.itertuples(index=False)
    ]
    return "\n".join([head, rule, *body]) + "\n"


def html_table(table: pd.DataFrame | None) -> str:
    if table is None or table.empty:
        return "<p>(none)</p>"
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(fmt(v))}</td>" for v in row) + "</tr>"
        for row in table.itertuples(index=False)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def save_figure(fig: Figure, folder: Path, name: str) -> bytes:
    """``name.svg`` and ``name.png`` in ``folder``; returns the PNG's bytes."""
    import io

    # "tight" grows the canvas to hold legends placed outside the axes
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    png = _palette_png(buf.getvalue())
    svg = io.BytesIO()
    # no date, and ids salted by the name: the same figure gives the same bytes
    with matplotlib.rc_context({"svg.hashsalt": name}):
        fig.savefig(svg, format="svg", bbox_inches="tight", metadata={"Date": None})
    _write(folder / f"{name}.png", png)
    _write(folder / f"{name}.svg", svg.getvalue())
    return png


def _write(path: Path, data: str | bytes) -> Path:
    """:func:`atomic_write`, whose errors name ``path`` (a full disk's names no file)."""
    try:
        return atomic_write(path, data)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc


def write(page: Page, out: Path, figure_dir: Path) -> Path:
    """``report.md`` and ``report.html`` in ``out``; returns the HTML path."""
    rel = figure_dir.relative_to(out) if figure_dir.is_relative_to(out) else figure_dir
    md = [f"# {md_escape(page.title)}\n"]
    body = [f"<h1>{html.escape(page.title)}</h1>"]
    for s in page.sections:
        if s.heading:
            md.append(f"\n## {md_escape(s.heading)}\n")
            body.append(f"<h2>{html.escape(s.heading)}</h2>")
        if s.text:
            md.append(f"{md_escape(s.text)}\n")
            body.append(f"<p>{html.escape(s.text)}</p>")
        if s.table is not None:
            md.append(markdown_table(s.table))
            body.append(html_table(s.table))
    if page.figures or page.notes:
        md.append("\n## Figures\n")
        body.append("<h2>Figures</h2>")
    for note in page.notes:
        md.append(f"Note: {md_escape(note)}\n")
        body.append(f"<p>Note: {html.escape(note)}</p>")
    for name, caption, png in page.figures:
        md.append(f"![{md_escape(caption)}]({rel}/{name}.png)\n")
        data = base64.b64encode(png).decode()
        body.append(
            f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
            f'<figcaption>{html.escape(caption)} (<a href="{rel}/{name}.svg">SVG</a>)'
            "</figcaption></figure>"
        )
    _write(out / "report.md", "\n".join(md))
    return _write(
        out / "report.html", _HTML.format(title=html.escape(page.title), body="\n".join(body))
    )


# The small script marks, once the page has loaded, how many figures decoded
# and how many table rows rendered; the browser test reads the marks.
_HTML = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: sans-serif; max-width: 1200px; margin: 2em auto; color: #222; }}
table {{ border-collapse: collapse; font-size: 0.85em; margin: 1em 0; }}
th, td {{ border: 1px solid #ccc; padding: 3px 7px; text-align: right; }}
th {{ background: #f3f3f3; }}
td:first-child, th:first-child {{ text-align: left; }}
img {{ max-width: 100%; }}
figure {{ margin: 1.5em 0; }}
</style></head>
<body>
{body}
<script>
window.addEventListener("load", function () {{
  var imgs = document.images, ok = 0;
  for (var i = 0; i < imgs.length; i++) {{
    if (imgs[i].complete && imgs[i].naturalWidth > 0) ok++;
  }}
  document.body.setAttribute("data-figures", ok + "/" + imgs.length);
  document.body.setAttribute("data-table-rows", document.querySelectorAll("tbody tr").length);
}});
</script>
</body></html>
"""


def _palette_png(png: bytes) -> bytes:
    """The PNG with at most 256 colours: a third of the bytes for these line
    plots, with no visible change (the SVG beside it keeps every colour)."""
    import io

    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        white = Image.new("RGBA", image.size, "white")
        flat = Image.alpha_composite(white, image.convert("RGBA")).convert("RGB")
        out = io.BytesIO()
        flat.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
            out, format="PNG", optimize=True
        )
    return out.getvalue()
