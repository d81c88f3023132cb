"""The compliance how-to's chart is what ``docs/charts/inventory_chart.py`` draws from the committed
summary, and that summary has the shape ``osscse inventory --summary`` prints today.

So the picture in the docs cannot drift from the data, the script or the summary format: a change
to any of them fails here until the SVG is redrawn with the command the how-to prints.
"""

from __future__ import annotations

import importlib.util
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from types import ModuleType

from airflow_provider_osscse.transport.inventory_report import InventorySummary

DOCS = Path(__file__).resolve().parents[2] / "docs"
SUMMARY = DOCS / "how-to" / "inventory-summary.json"
CHART = DOCS / "how-to" / "inventory-summary.svg"
REDRAW = "python docs/charts/inventory_chart.py docs/how-to/inventory-summary.json docs/how-to/inventory-summary.svg"


def chart_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("inventory_chart", DOCS / "charts" / "inventory_chart.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_chart_is_the_scripts_drawing_of_the_committed_summary() -> None:
    drawn = chart_script().render(json.loads(SUMMARY.read_text(encoding="utf-8")))
    assert drawn == CHART.read_text(encoding="utf-8"), f"redraw it: {REDRAW}"
    assert REDRAW in (DOCS / "how-to" / "compliance-export.md").read_text(encoding="utf-8").replace("\n", " ")


def test_the_committed_summary_has_the_keys_of_a_summary_today() -> None:
    committed = json.loads(SUMMARY.read_text(encoding="utf-8"))
    assert set(committed) == set(InventorySummary().to_dict())


def test_bars_colour_current_stale_and_findings() -> None:
    script = chart_script()
    summary = json.loads(SUMMARY.read_text(encoding="utf-8"))
    bars = {label: (count, colour) for label, count, colour in script.bars(summary)}
    assert bars["vault-transit:transit/orders v1"] == (180, script.STALE)
    assert bars["vault-transit:transit/orders v2"] == (420, script.CURRENT)
    assert bars["plaintext"] == (25, script.FINDING) and bars["encrypted, no integrity tag"] == (40, script.FINDING)
    svg = ET.fromstring(CHART.read_text(encoding="utf-8"))  # well-formed
    rects = svg.findall("{http://www.w3.org/2000/svg}rect")
    assert len(rects) == 1 + len(bars) + 4  # background, one bar each, the legend's four swatches
