"""The weekly review's charts, drawn on the server as SVG with matplotlib.

Server-side so the PDF packet holds the same charts as the page (WeasyPrint runs
no JavaScript). matplotlib is the kept, widely used choice: its SVG backend
needs no display and no browser, and its output carries no script. Each chart
is embedded as a ``data:image/svg+xml`` image: an image's own styles are
outside the page's CSP, and WeasyPrint draws SVG images.
"""

import base64
import functools
import io
import logging
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")  # no display: render to files only
# Labels such as "07-12" and "Nov 16" are categories on purpose; matplotlib says so at INFO
# level on every chart.
logging.getLogger("matplotlib.category").setLevel(logging.WARNING)

from matplotlib.figure import Figure  # noqa: E402

from srs.incidents.models import INCIDENT_TYPES  # noqa: E402
from srs.incidents.reports import WeeklyReview  # noqa: E402
from srs.sites.models import TIME_BANDS  # noqa: E402

COLOURS = ("#1f5f99", "#c0392b", "#e67e22", "#27ae60", "#8e44ad", "#16a085", "#d35400",
           "#2c3e50", "#7f8c8d", "#f1c40f", "#e84393", "#00b894")
SIZE = (7.6, 3.2)
# Keep text as text (smaller files) and the output the same from run to run.
SVG_META = {"Date": None, "Creator": None}
matplotlib.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "srs",
                            "font.family": "sans-serif", "font.size": 9})


@dataclass(frozen=True)
class Chart:
    name: str
    title: str
    svg: bytes

    @property
    def data_uri(self) -> str:
        return "data:image/svg+xml;base64," + base64.b64encode(self.svg).decode("ascii")


def _figure(title: str):
    figure = Figure(figsize=SIZE, layout="constrained")
    axes = figure.subplots()
    axes.set_title(title, loc="left", fontsize=10, fontweight="bold")
    axes.spines[["top", "right"]].set_visible(False)
    axes.grid(axis="y", color="#ddd", linewidth=0.6)
    axes.set_axisbelow(True)
    return figure, axes


def _svg(figure) -> bytes:
    out = io.BytesIO()
    figure.savefig(out, format="svg", metadata=SVG_META)
    return out.getvalue()


# Drawing takes a few hundred milliseconds a chart; the same figures draw the same SVG, so a
# week whose counts have not changed since the last look is not drawn again.
@functools.lru_cache(maxsize=512)
def _bars(title: str, labels: tuple[str, ...], values: tuple[int, ...]) -> bytes:
    figure, axes = _figure(title)
    bars = axes.bar(labels, values, color=COLOURS[0])
    axes.bar_label(bars, fontsize=8)
    axes.yaxis.get_major_locator().set_params(integer=True)
    return _svg(figure)


@functools.lru_cache(maxsize=256)
def _stacked(title: str, labels: tuple[str, ...], series: tuple[tuple[str, tuple], ...]) -> bytes:
    figure, axes = _figure(title)
    bottom = [0] * len(labels)
    for colour, (label, counts) in zip(COLOURS, series, strict=False):
        axes.bar(labels, counts, bottom=bottom, label=label, color=colour)
        bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
    if series:
        figure.legend(fontsize=7, frameon=False, loc="outside right upper")
    else:
        axes.bar(labels, bottom)
    axes.yaxis.get_major_locator().set_params(integer=True)
    axes.tick_params(axis="x", labelsize=7)
    return _svg(figure)


@functools.lru_cache(maxsize=256)
def _line(title: str, labels: tuple[str, ...], values: tuple[float | None, ...]) -> bytes:
    figure, axes = _figure(title)
    # A week without visits has no rate: a gap in the line.
    axes.plot(labels, [float("nan") if v is None else v for v in values], marker="o",
              color=COLOURS[1])
    axes.set_ylim(bottom=0)
    axes.tick_params(axis="x", labelsize=7)
    return _svg(figure)


def weekly_charts(review: WeeklyReview) -> list[Chart]:
    """The trends reviewers look at each week, over the last 12 weeks."""
    weeks = tuple(f"{monday:%b} {monday.day}" for monday in review.trend_weeks)
    series = tuple((label, tuple(review.type_per_week[key]))
                   for key, label in INCIDENT_TYPES.items() if any(review.type_per_week[key]))
    places = tuple(b.label for b in review.booths) + ("Elsewhere",)
    rates = tuple(review.overdoses_per_1000_visits)
    titles = {"by_type": "Incidents by type per week",
              "by_band": "Incidents by time band (12 weeks, site time)",
              "by_booth": "Incidents by booth (12 weeks)",
              "overdose_rate": "Overdoses per 1,000 visits, per week",
              "naloxone_per_overdose": "Naloxone doses per overdose, per week",
              "minutes_to_naloxone": "Minutes from response start to first naloxone (median)"}
    return [
        Chart("by_type", titles["by_type"], _stacked(titles["by_type"], weeks, series)),
        Chart("by_band", titles["by_band"], _bars(
            titles["by_band"], TIME_BANDS, tuple(review.by_band[b] for b in TIME_BANDS))),
        Chart("by_booth", titles["by_booth"], _bars(
            titles["by_booth"], places, tuple(review.by_booth[p] for p in places))),
        Chart("overdose_rate", titles["overdose_rate"], _line(
            titles["overdose_rate"], weeks, rates)),
        Chart("naloxone_per_overdose", titles["naloxone_per_overdose"], _line(
            titles["naloxone_per_overdose"], weeks, tuple(review.naloxone_per_overdose))),
        Chart("minutes_to_naloxone", titles["minutes_to_naloxone"], _line(
            titles["minutes_to_naloxone"], weeks, tuple(review.minutes_to_naloxone))),
    ]
