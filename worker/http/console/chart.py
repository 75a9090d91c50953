"""The overview's chart as inline SVG geometry: drawn on the server, no script (the console's
policy allows none), colours as SVG attributes (it allows no inline style either).

Two panels over the same 15 minutes: sends per second as a line, and answers by code as
stacked bars per 10 seconds (sent ``OK`` first, then each other code answered). Pure: buckets
in, shapes out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from worker.http.console.chartdata import BUCKET_S, SENT, Bucket

WIDTH = 900
PANEL_HEIGHT = 120
LEFT = 48  # room for the scale's labels
BAR_GAP = 1
# Colours by code: sent green, billing red, the rest in a fixed order of the codes seen.
COLOURS = {SENT: "#12b76a", "BILL_001": "#d92d20"}
PALETTE = ("#f79009", "#7a5af8", "#2e90fa", "#ee46bc", "#667085", "#15b79e")


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    colour: str
    title: str  # what a pointer over it says (the SVG <title>)


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    line: str  # polyline points of sends per second
    peak_per_s: float
    bars: list[Bar]
    peak_answers: int
    legend: list[tuple[str, str, int]]  # (code, colour, answers in the 15 minutes)
    start: int
    end: int
    empty: bool
    left: int = LEFT
    panel: int = PANEL_HEIGHT
    top: int = PANEL_HEIGHT + 30  # where the second panel begins, below the first's labels


def _nice(peak: float) -> float:
    """A round top for a scale that holds ``peak`` (1, 2 or 5 times a power of ten)."""
    if peak <= 0:
        return 1.0
    step = 1.0
    while step * 10 <= peak:
        step *= 10
    while step > peak * 10:
        step /= 10
    return next(top for top in (step, 2 * step, 5 * step, 10 * step) if top >= peak)


def colours_for(codes: Sequence[str]) -> dict[str, str]:
    others = [code for code in codes if code not in COLOURS]
    chosen = {code: PALETTE[i % len(PALETTE)] for i, code in enumerate(sorted(others))}
    return {**{c: COLOURS[c] for c in codes if c in COLOURS}, **chosen}


def build_chart(buckets: Sequence[Bucket]) -> Chart:
    """The chart of these buckets (oldest first, 10 seconds each)."""
    step = (WIDTH - LEFT) / max(1, len(buckets))
    rates = [bucket.sends_per_s for bucket in buckets]
    peak_rate = _nice(max(rates, default=0.0))
    points = " ".join(
        f"{LEFT + (i + 0.5) * step:.1f},{PANEL_HEIGHT * (1 - rate / peak_rate):.1f}"
        for i, rate in enumerate(rates)
    )
    totals: dict[str, int] = {}
    for bucket in buckets:
        for code, n in bucket.answers.items():
            totals[code] = totals.get(code, 0) + n
    order = [SENT, *sorted(code for code in totals if code != SENT)]
    colours = colours_for(order)
    peak_answers = int(_nice(max((sum(b.answers.values()) for b in buckets), default=0)))
    top = Chart.top
    bars = []
    for i, bucket in enumerate(buckets):
        base = float(top + PANEL_HEIGHT)
        for code in order:
            n = bucket.answers.get(code, 0)
            if n <= 0:
                continue
            height = PANEL_HEIGHT * n / peak_answers
            base -= height
            bars.append(
                Bar(
                    LEFT + i * step + BAR_GAP / 2,
                    base,
                    max(1.0, step - BAR_GAP),
                    height,
                    colours[code],
                    f"{code} {n} in 10 s",
                )
            )
    start = buckets[0].start if buckets else 0
    return Chart(
        width=WIDTH,
        height=top + PANEL_HEIGHT + 20,
        line=points,
        peak_per_s=peak_rate,
        bars=bars,
        peak_answers=peak_answers,
        legend=[(code, colours[code], totals.get(code, 0)) for code in order],
        start=start,
        end=buckets[-1].start + BUCKET_S if buckets else 0,
        empty=not any(totals.values()),
    )
