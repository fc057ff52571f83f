"""Point charts that show values as they are: a marker at every measured point, a dotted line
between neighbours, axis limits that hold every value, the key in the chart's title (never a
legend box over the data) and the same numbers as a small text table beside the picture.

textual-plot's block mode draws a line as full-cell blocks: between a few integer x positions
those blocks run a whole cell wide and overdraw each other, so a peak of 1.0 can vanish under
the next series (or under the legend). Markers and one-cell dots cannot hide a value that way.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from rich.text import Text
from textual.widgets import Label
from textual_plot import PlotWidget

DOT = "·"


def key_title(text: str, keys: Sequence[tuple[str, str, str]]) -> Text:
    """A chart title with its key: `marker name` in each series' colour."""
    title = Text(text)
    for name, style, marker in keys:
        title.append("  ")
        title.append(f"{marker} ", style=style)
        title.append(name)
    return title


class KeyTitle(Label):
    """A chart's title and key, `█ name` per series, wrapped between keys only (a swatch never
    splits from its name) and fitted again whenever its own width changes: the layout can
    narrow the title after it was drawn without the pane itself changing size."""

    def __init__(self, text: str = "", **kwargs: Any) -> None:
        super().__init__(text, **kwargs)
        self._text = text
        self._keys: list[tuple[str, str]] = []

    def show(self, text: str, keys: Sequence[tuple[str, str]]) -> None:
        self._text, self._keys = text, list(keys)
        self._fit()

    def on_resize(self) -> None:
        self._fit()

    def _fit(self) -> None:
        width = self.content_region.width
        title = Text(self._text)
        used = len(self._text)
        for name, style in self._keys:  # a key that does not fit starts a row
            piece = 4 + len(name)
            if width and used + piece > width and used:
                title.append("\n")
                used = 0
            else:
                title.append("  ")
                used += 2
            title.append("█ ", style=style)
            title.append(name)
            used += piece - 2
        self.update(title, layout=False)


def padded_limits(values: Sequence[float], low: float | None = None, high: float | None = None,
                  pad: float = 0.06) -> tuple[float, float]:
    """(ymin, ymax) that hold every finite value (and `low`/`high` when given), padded by a
    fraction of the span so that a point on the limit is not drawn on the axis box."""
    finite = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    lo = min(finite + ([low] if low is not None else []), default=0.0)
    hi = max(finite + ([high] if high is not None else []), default=1.0)
    span = (hi - lo) or 1.0
    return lo - pad * span, hi + pad * span


def dotted(xs: Sequence[float], ys: Sequence[float], across: int = 240) -> tuple[list[float], list[float]]:
    """Points along the straight segments between neighbours (for a dotted connecting line),
    about `across` of them over the whole x span (enough for one per cell on a wide screen)."""
    out_x: list[float] = []
    out_y: list[float] = []
    finite = [x for x in xs if math.isfinite(x)]
    span = (max(finite) - min(finite)) if len(finite) > 1 else 0.0
    if span <= 0:
        return out_x, out_y
    for (x0, y0), (x1, y1) in zip(zip(xs, ys), zip(xs[1:], ys[1:])):
        if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
            continue
        n = max(2, int(abs(x1 - x0) / span * across))
        for i in range(1, n):
            t = i / n
            out_x.append(x0 + t * (x1 - x0))
            out_y.append(y0 + t * (y1 - y0))
    return out_x, out_y


def draw_points(plot: PlotWidget, series: Sequence[tuple[str, list[float], list[float], str, str]], *,
                xlim: tuple[float, float] | None = None, ylim: tuple[float, float] | None = None,
                xticks: Sequence[float] | None = None, yticks: Sequence[float] | None = None,
                lines: bool = True) -> None:
    """Draw (name, xs, ys, style, marker) series as markers joined by dots. All dotted lines go
    first and the markers after them, in the given order, so a marker is never hidden by a line
    and the last series is on top where two share a cell. The plot's legend stays hidden."""
    plot.clear()
    if lines:
        for _name, xs, ys, style, _marker in series:
            dx, dy = dotted(xs, ys)
            if dx:
                plot.scatter(dx, dy, marker=DOT, marker_style=style)
    for name, xs, ys, style, marker in series:
        plot.scatter(xs, ys, marker=marker, marker_style=f"bold {style}", label=name)
    plot.set_xlimits(*(xlim or (None, None)))
    plot.set_ylimits(*(ylim or (None, None)))
    plot.set_xticks(list(xticks) if xticks is not None else None)
    plot.set_yticks(list(yticks) if yticks is not None else None)


def value_table(columns: Sequence[str], rows: Sequence[tuple[str, str, str, Sequence[float | None]]],
                *, corner: str = "", fmt: str = "{:.3f}", highlight_max: bool = False) -> Text:
    """A fixed-width text table: rows (name, style, marker, values) against columns, `corner`
    above the names. With `highlight_max`, each row's largest value is bold (its peak)."""
    width = max([len(c) for c in columns] + [len(fmt.format(-1.0))]) + 1
    marks = 2 if any(r[2] for r in rows) else 0
    name_width = max([len(r[0]) + 2 for r in rows] + [len(corner) - marks, 4])
    out = Text(corner.ljust(name_width + marks) + "".join(c.rjust(width) for c in columns) + "\n", style="bold")
    for name, style, marker, values in rows:
        if marker:
            out.append(f"{marker} ", style=style)
        out.append(name.ljust(name_width), style=style)
        finite = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
        peak = max(finite) if finite else None
        for v in values:
            shown = "-" if not isinstance(v, (int, float)) or not math.isfinite(v) else fmt.format(v)
            bold = highlight_max and peak is not None and v == peak
            out.append(shown.rjust(width), style="bold" if bold else "")
        out.append("\n")
    out.rstrip()
    return out
