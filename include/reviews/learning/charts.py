"""Charts for the bulletins: PNG bytes from matplotlib, the same bytes for the same numbers.

Accessibility rules every chart follows (public sector accessibility regulations, WCAG 2.2):
- Nothing is told by colour alone: bars carry their value as text; lines differ by marker and
  line style as well as colour, and each is labelled at its end, not only in a legend.
- Colours are dark enough on white for 3:1 non-text contrast (all are above 4.5:1).
- Every chart has alt text (written by the caller, from the same numbers) and a data table
  right after it in the bulletin.
Rendering is deterministic (fixed fonts, no timestamp or software tag in the PNG), so the
bulletin's content hash changes only when a figure does.
"""
from __future__ import annotations

import base64
import io
import threading
from dataclasses import dataclass

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter

BAR_COLOUR = "#1d4f7a"  # dark blue: 8.9:1 on white
TEXT = "#1b1b1b"
# Colour, marker, line style: three ways to tell the series apart.
SERIES_STYLES = (
    ("#1d4f7a", "o", "-"),
    ("#8a3b12", "s", "--"),
    ("#2f5d1e", "^", "-."),
    ("#5b2a86", "D", ":"),
)
DISPLAY_WIDTH = 600  # px in the email; the PNG has twice the pixels for sharp print and HiDPI
DPI = 160
_RC = {"svg.hashsalt": "reviews-bulletin", "font.family": "DejaVu Sans", "font.size": 10,
       "axes.edgecolor": "#5f6b77", "axes.labelcolor": TEXT, "xtick.color": TEXT, "ytick.color": TEXT}


@dataclass(frozen=True)
class Chart:
    src: str  # data:image/png;base64,...
    alt: str
    width: int
    height: int
    caption: str = ""  # a visible one-line title above the image

    @staticmethod
    def from_png(png: bytes, alt: str, fig_w: float, fig_h: float, caption: str = "") -> "Chart":
        uri = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
        return Chart(uri, alt, DISPLAY_WIDTH, round(DISPLAY_WIDTH * fig_h / fig_w), caption)


_RENDERERS = threading.local()  # per thread, by (width, height, dpi); each draw clears its buffer
_RENDERERS_KEPT = 16  # a period draws charts of a few sizes, each measured at 100 dpi and drawn at DPI


class _Canvas(FigureCanvasAgg):
    """An Agg canvas that shares its renderer with every chart of the same size and dpi.

    matplotlib keeps text measurements per renderer, so a renderer per chart (the default)
    measures every tick label and title again; the drawing itself is the same.
    """

    def get_renderer(self):
        w, h = self.figure.bbox.size
        key = (w, h, self.figure.dpi)
        kept = _RENDERERS.__dict__.setdefault("by_size", {})
        renderer = kept.get(key)
        if renderer is None:
            if len(kept) >= _RENDERERS_KEPT:
                kept.pop(next(iter(kept)))
            renderer = kept[key] = RendererAgg(w, h, self.figure.dpi)
        self.renderer, self._lastKey = renderer, key
        return renderer


def _png(fig: Figure) -> bytes:
    # tight_layout leaves a placeholder layout engine, which makes savefig run a whole draw
    # (output disabled) before the real one; the layout is already done, so drop the engine.
    fig.set_layout_engine(None)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def bar_chart(bars: list[tuple[str, int]], xlabel: str, *, caption: str, alt: str, suffix: str = "") -> Chart:
    """Horizontal bars, largest first, each with its value printed at its end."""
    fig_w, fig_h = 7.5, 0.9 + 0.36 * len(bars)
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(fig_w, fig_h))
        _Canvas(fig)
        ax = fig.add_subplot()
        labels = [b[0] for b in reversed(bars)]
        values = [b[1] for b in reversed(bars)]
        ys = list(range(len(bars)))
        ax.barh(ys, values, color=BAR_COLOUR, height=0.65)
        ax.set_yticks(ys, labels)
        for y, v in zip(ys, values):
            ax.text(v, y, f" {v}{suffix}", va="center", color=TEXT)
        ax.set_xlim(0, max(values or [1]) * 1.18 or 1)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel(xlabel)
        ax.spines[["top", "right"]].set_visible(False)
        fig.tight_layout()
        png = _png(fig)
    return Chart.from_png(png, alt, fig_w, fig_h, caption)


def line_chart(categories: list[str], series: list[tuple[str, list[float | None]]], ylabel: str, *,
               caption: str, alt: str, percent: bool = True) -> Chart:
    """One line per series over the categories (periods); gaps where a value is not published."""
    fig_w, fig_h = 7.5, 3.6
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(fig_w, fig_h))
        _Canvas(fig)
        ax = fig.add_subplot()
        xs = list(range(len(categories)))
        for (name, values), (colour, marker, style) in zip(series, SERIES_STYLES * 4):
            ys = [float("nan") if v is None else v for v in values]
            ax.plot(xs, ys, color=colour, marker=marker, linestyle=style, linewidth=2, markersize=7, label=name)
            last = max((i for i, v in enumerate(values) if v is not None), default=None)
            if last is not None:
                ax.annotate(f"{name}: {values[last]:.0f}{'%' if percent else ''}", (xs[last], values[last]),
                            xytext=(8, 0), textcoords="offset points", va="center", color=colour, fontsize=9)
        ax.set_xticks(xs, categories)
        ax.set_xlim(-0.3, len(categories) - 1 + 2.2)
        if percent:
            ax.set_ylim(0, 105)
            ax.yaxis.set_major_formatter(PercentFormatter(100, decimals=0))
        ax.set_ylabel(ylabel)
        ax.grid(axis="y", color="#d0d7de", linewidth=0.8)
        ax.spines[["top", "right"]].set_visible(False)
        ax.legend(loc="upper center", bbox_to_anchor=(0.45, -0.12), frameon=False, fontsize=9, ncol=4)
        fig.tight_layout()
        png = _png(fig)
    return Chart.from_png(png, alt, fig_w, fig_h, caption)
