"""The HTML report: one self-contained file (no scripts, no external resources) that renders in
headless Chromium to a picture that is not blank (a chart per kind, in several colours), whose
table holds exactly the numbers of the JSON output."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from metering_history import END, History, history
from monitoring_projects import EXAMPLE
from PIL import Image
from scaffold_helpers import run_cli

CHROMIUM = os.environ.get("CHROMIUM_BIN") or shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def served() -> Iterator[History]:
    with history() as h:
        yield h


class _Page(HTMLParser):
    """The cells of the `usage` table, the chart count and any external reference."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.headers: list[str] = []
        self.svgs = 0
        self.external: list[str] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "svg":
            self.svgs += 1
        if tag == "script":
            self.external.append("<script>")
        for name, value in attrs:
            if name in ("src", "href") and value and not value.startswith("#"):
                self.external.append(value)
        if tag == "tr":
            self.rows.append([])
        if tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            text = "".join(self._cell).strip()
            if tag == "th":
                self.headers.append(text)
            else:
                self.rows[-1].append(text)
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _report(served: History, project: Path, output: str, out: Path) -> None:
    result = run_cli(
        "report", "--project", project, "--prometheus", served.url,
        "--from", str(served.t0), "--to", str(served.t0 + END),
        "--output", output, "--out", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr


def test_html_renders_and_its_table_matches_the_json(served: History, tmp_path: Path) -> None:
    page_file, json_file = tmp_path / "usage.html", tmp_path / "usage.json"
    _report(served, EXAMPLE, "html", page_file)
    _report(served, EXAMPLE, "json", json_file)
    answer = json.loads(json_file.read_text())
    page = _Page()
    page.feed(page_file.read_text())
    assert page.external == []  # self-contained
    assert page.svgs == len(answer["kinds"]) == 1
    assert page.headers == ["kind", "namespace", "object_hours", "instance_hours", "gap_hours"]
    body = [r for r in page.rows if r]
    assert len(body) == len(answer["rows"]) == 3
    for cells, row in zip(body, answer["rows"], strict=True):
        assert cells[:2] == [row["kind"], row["group"]]
        numbers = [float(c) for c in cells[2:]]
        assert numbers == pytest.approx(
            [row["object_hours"], row["weight_hours"]["instance"], row["gap_hours"]], abs=0.0005
        )
    assert re.search(r"<rect[^>]*fill=\"#d9d9d9\"", page_file.read_text())  # the gap, shaded

    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip("chromium not installed (apt-get install chromium)")
    shot = tmp_path / "usage.png"
    proc = subprocess.run(
        [
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}",
            "--window-size=1000,900", page_file.as_uri(),
        ],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert shot.is_file(), proc.stdout + proc.stderr
    with Image.open(shot) as picture:
        rgb = picture.convert("RGB")
        colours = rgb.getcolors(maxcolors=1 << 20) or []
        assert rgb.size == (1000, 900)
    assert len(colours) > 20, "the screenshot is (nearly) blank"
    background = max(colours)[0] / (1000 * 900)
    assert background < 0.97, "the page is almost all background"
    # each namespace's line colour is on the picture
    palette = {(0x00, 0x72, 0xB2), (0xE6, 0x9F, 0x00), (0x00, 0x9E, 0x73)}
    seen = {colour for _count, colour in colours}
    assert palette <= seen, palette - seen


def test_hostile_names_are_escaped(tmp_path: Path) -> None:
    from scaffold_metrics.report.html import html_text
    from scaffold_metrics.report.run import UsageReport
    from scaffold_metrics.report.usage import KindUsage, Row

    evil = '<script>alert("x")</script>'
    kind = KindUsage(evil, "raw families", "namespace", (), (Row(evil, evil, 1.0, {}),),
                     (3600.0,), {evil: (1.0,)})  # fmt: skip
    text = html_text(UsageReport(0, 3600, 3600, "namespace", None, (kind,), (evil,)))
    assert "<script>" not in text
    assert "&lt;script&gt;" in text
