"""Inline SVG bar charts: the report works from file:// with no library and no network."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape

_ROW = 22  # pixels per bar
_LABEL = 150  # width of the label column
_BAR = 260  # width of the longest bar
_WIDTH = _LABEL + _BAR + 110


def _number(value: float) -> str:
    return f"{value:,.4f}".rstrip("0").rstrip(".") if isinstance(value, float) else f"{value:,}"


def bar_chart(title: str, values: Mapping[str, float], *, reference: Mapping[str, float] | None = None,
              reference_label: str = "configured", empty: str = "none") -> str:
    """Horizontal bars, one per key; `reference` (e.g. configured weights) draws an outline bar
    beside each value so the eye compares them."""
    keys = list(dict.fromkeys([*values, *(reference or {})]))
    if not keys:
        caption = f"<figcaption>{escape(title)}</figcaption>"
        return f'<figure class="chart">{caption}<p class="empty">{escape(empty)}</p></figure>'
    top = max([*values.values(), *(reference or {}).values(), 0]) or 1
    per_key = _ROW * (2 if reference is not None else 1) + 6
    height = per_key * len(keys) + (18 if reference is not None else 0)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{escape(title)}" '
             f'width="{_WIDTH}" height="{height}" viewBox="0 0 {_WIDTH} {height}">']
    for index, key in enumerate(keys):
        y = index * per_key
        value = values.get(key, 0)
        parts.append(f'<text x="{_LABEL - 6}" y="{y + 15}" text-anchor="end">{escape(str(key))}</text>')
        parts.append(f'<rect class="bar" x="{_LABEL}" y="{y + 3}" width="{_BAR * value / top:.1f}" height="16">'
                     f'<title>{escape(str(key))}: {_number(value)}</title></rect>')
        parts.append(f'<text x="{_LABEL + _BAR * value / top + 4:.1f}" y="{y + 15}">{_number(value)}</text>')
        if reference is not None:
            ref = reference.get(key, 0)
            parts.append(f'<rect class="reference" x="{_LABEL}" y="{y + _ROW + 1}" width="{_BAR * ref / top:.1f}" '
                         f'height="12"><title>{escape(reference_label)}: {_number(ref)}</title></rect>')
            parts.append(f'<text class="muted" x="{_LABEL + _BAR * ref / top + 4:.1f}" y="{y + _ROW + 11}">'
                         f'{escape(reference_label)} {_number(ref)}</text>')
    if reference is not None:
        parts.append(f'<rect class="bar" x="{_LABEL}" y="{height - 12}" width="10" height="10"/>'
                     f'<text x="{_LABEL + 14}" y="{height - 3}">measured</text>'
                     f'<rect class="reference" x="{_LABEL + 90}" y="{height - 12}" width="10" height="10"/>'
                     f'<text x="{_LABEL + 104}" y="{height - 3}">{escape(reference_label)}</text>')
    parts.append("</svg>")
    return f'<figure class="chart"><figcaption>{escape(title)}</figcaption>{"".join(parts)}</figure>'
