"""Small server-rendered SVG charts (no JavaScript, nothing from a CDN)."""

from dataclasses import dataclass


@dataclass
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    value: int

    # SVG coordinates written once here (one decimal, never localized) rather than by a template filter per use
    @property
    def svg_x(self) -> str:
        return f"{self.x:.1f}"

    @property
    def svg_y(self) -> str:
        return f"{self.y:.1f}"

    @property
    def svg_width(self) -> str:
        return f"{self.width:.1f}"

    @property
    def svg_height(self) -> str:
        return f"{self.height:.1f}"


def daily_bars(days: list[tuple], *, width=720, height=160) -> dict:
    """Columns for minutes per day; returns what the template draws."""
    peak = max((m for _, m in days), default=0) or 1
    gap = 2
    column = (width - gap * max(len(days) - 1, 0)) / max(len(days), 1)
    bars = []
    for i, (day, minutes) in enumerate(days):
        h = (height - 20) * minutes / peak
        bars.append(Bar(i * (column + gap), height - 16 - h, column, h, f"{day:%b %-d}", minutes))
    return {"bars": bars, "width": width, "height": height, "peak": peak,
            "ticks": [b for i, b in enumerate(bars) if i % 5 == 0]}


def account_bars(lines, *, count=None, limit=10, width=720, row=22) -> dict:
    """Horizontal bars for the accounts that used the most minutes (``lines`` may be only those, ``count``
    then says how many lines there are in all)."""
    top = sorted(lines, key=lambda ln: -ln.minutes)[:limit]
    peak = max((ln.minutes for ln in top), default=0) or 1
    label_width = 260
    bars = [Bar(label_width, i * row, (width - label_width - 60) * ln.minutes / peak, row - 6,
                ln.description.split(" › ")[-1], ln.minutes) for i, ln in enumerate(top)]
    return {"bars": bars, "width": width, "height": max(row * len(bars), row), "label_width": label_width,
            "more": max((len(lines) if count is None else count) - limit, 0)}
