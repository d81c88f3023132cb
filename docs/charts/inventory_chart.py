"""Draw an ``osscse inventory --summary`` as an SVG bar chart (standard library only).

    osscse inventory oss://BUCKET/PREFIX --summary --current-version CMK=VERSION > summary.json
    python docs/charts/inventory_chart.py summary.json chart.svg

One bar per CMK version (objects), coloured by what an auditor asks: on the current version
(green), on another version of a CMK whose current version was given (orange, ``stale``), or of a
CMK no policy names (blue); then the findings: encrypted objects without an integrity tag, objects
with an unbound tag, plaintext objects and objects whose headers could not be read (red). The docs'
compliance how-to shows ``docs/how-to/inventory-summary.svg``, drawn by this script from
``docs/how-to/inventory-summary.json``; ``tests/docs/test_inventory_chart.py`` redraws it and
compares, so the picture always matches the data and the script.
"""

from __future__ import annotations

import json
import sys
from html import escape
from pathlib import Path
from typing import Any

CURRENT, STALE, UNKNOWN, FINDING = "#2e7d32", "#ef6c00", "#1565c0", "#c62828"
ROW, BAR, LABEL_WIDTH, CHART_WIDTH, MARGIN = 26, 18, 330, 380, 16


def _version_name(version: str) -> str:
    return version[1:] if version.startswith("v") and version[1:].isdigit() else version


def _short(text: str, limit: int = 36) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def bars(summary: dict[str, Any]) -> list[tuple[str, int, str]]:
    """``(label, objects, colour)`` per bar, CMK versions first (sorted), then the findings."""
    current = summary.get("current_versions") or {}
    out: list[tuple[str, int, str]] = []
    for cmk, entry in summary["by_cmk"].items():
        for version, tally in entry["versions"].items():
            if cmk not in current:
                colour = UNKNOWN
            elif _version_name(version) == _version_name(current[cmk]):
                colour = CURRENT
            else:
                colour = STALE
            label = _short(cmk) if version == "-" else f"{_short(cmk)} {version}"  # "-": the CMK names none
            out.append((label, tally["objects"], colour))
    out += [
        ("encrypted, no integrity tag", summary["untagged"]["objects"], FINDING),
        ("encrypted, unbound tag", summary["unbound"]["objects"], FINDING),
        ("plaintext", summary["plaintext"]["objects"], FINDING),
        ("headers unreadable (errors)", summary["errors"], FINDING),
    ]
    return out


def render(summary: dict[str, Any]) -> str:
    """The chart as an SVG document (deterministic: the same summary gives the same bytes)."""
    rows = bars(summary)
    top = 52
    height = top + ROW * len(rows) + 44
    width = MARGIN + LABEL_WIDTH + CHART_WIDTH + 70
    most = max((n for _, n, _ in rows), default=0) or 1
    title = f"{summary['all']['objects']} objects under oss://{summary['bucket']}/{summary['prefix']}"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="13">',
        f"<title>{escape(title)}</title>",
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
        f'<text x="{MARGIN}" y="24" font-size="15" font-weight="bold">{escape(title)}</text>',
        f'<text x="{MARGIN}" y="42" fill="#555555">objects per CMK version, then findings</text>',
    ]
    for index, (label, count, colour) in enumerate(rows):
        y = top + index * ROW
        length = round(CHART_WIDTH * count / most)
        parts += [
            f'<text x="{MARGIN + LABEL_WIDTH - 8}" y="{y + 14}" text-anchor="end">{escape(label)}</text>',
            f'<rect x="{MARGIN + LABEL_WIDTH}" y="{y}" width="{length}" height="{BAR}" fill="{colour}"/>',
            f'<text x="{MARGIN + LABEL_WIDTH + length + 6}" y="{y + 14}">{count}</text>',
        ]
    legend_y = top + ROW * len(rows) + 20
    legend = [(CURRENT, "current version"), (STALE, "stale version"), (UNKNOWN, "no policy"), (FINDING, "finding")]
    for index, (colour, text) in enumerate(legend):
        x = MARGIN + index * 150
        parts += [
            f'<rect x="{x}" y="{legend_y - 11}" width="12" height="12" fill="{colour}"/>',
            f'<text x="{x + 18}" y="{legend_y}">{text}</text>',
        ]
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        sys.stderr.write("usage: python docs/charts/inventory_chart.py SUMMARY.json OUT.svg\n")
        return 2
    summary = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    Path(argv[1]).write_text(render(summary), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
