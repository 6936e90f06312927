"""`landscape report`: the page of a tiny record, opened in headless Chromium, holds the record's
numbers and loads every figure; it is valid HTML (html5lib's strict parser) and needs nothing
from outside the file."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import h5py
import html5lib
import numpy as np
import pytest
from click.testing import CliRunner

from landscape import plot, report
from landscape.cli import main
from landscape.config import ProbeConfig, RecordConfig
from landscape.plot.captions import CAPTIONS, figure_caption
from landscape.report.study import study_report
from landscape.report.verdicts import verdict_table
from landscape.sweep import record

TINY = dict(width=0.125, subset=256, batch_size=32, max_steps=6)
FIGURES_DOC = Path(__file__).resolve().parents[1] / "docs" / "figures.md"

# What the page itself reports about its images and tables, read in the browser.
PAGE_STATE = """
const cells = (table) => [...table.tBodies[0].rows].map(row => [...row.cells].map(c =>
    ({text: c.textContent.trim(), value: c.dataset.value === undefined ? null
                                                                      : c.dataset.value})));
return {
  images: [...document.images].map(i => ({complete: i.complete, width: i.naturalWidth,
                                           height: i.naturalHeight,
                                           inline: i.src.startsWith("data:image/png;base64,"),
                                           figure: i.closest("figure").id})),
  external: [...document.querySelectorAll("link, script[src], iframe, object, embed")].length
            + [...document.querySelectorAll("a[href]")].filter(
                a => !a.getAttribute("href").startsWith("#")).length,
  tables: Object.fromEntries([...document.querySelectorAll("section")].map(s =>
      [s.id, [...s.querySelectorAll("table.data")].map(cells)])),
  warnings: [...document.querySelectorAll("#warnings li")].map(li => li.textContent.trim()),
};
"""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """vgg and vgg_bn, one lr, two seeds (so the verdicts have intervals), probed."""
    path = tmp_path_factory.mktemp("html") / "tiny.h5"
    record(RecordConfig(models=("vgg", "vgg_bn"), lrs=(1e-3,), seeds=(0, 1),
                        probe=ProbeConfig(every=2), **TINY), path)
    return path


@pytest.fixture(scope="module")
def page(tiny):
    out = tiny.parent / "page" / "tiny.html"
    result = CliRunner().invoke(main, ["report", str(tiny), "-o", str(out), "--dpi", "60"])
    assert result.exit_code == 0, result.output
    assert str(out) in result.output
    return out


@pytest.fixture(scope="module")
def browser():
    """Debian's chromium with its chromedriver, headless (CI runs as root without a display)."""
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    assert chromium and driver, ("the page test needs Debian's chromium and chromium-driver: "
                                 "apt-get install chromium chromium-driver (.ci/run does)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1280,900"):
        options.add_argument(flag)
    session = webdriver.Chrome(options=options, service=Service(driver))
    yield session
    session.quit()


def page_state(browser, path: Path) -> dict:
    browser.get(path.resolve().as_uri())
    return browser.execute_script(PAGE_STATE)


def test_every_figure_loads_inline(browser, page, tiny):
    state = page_state(browser, page)
    expected = plot.all_figures(report.load_runs([tiny]))
    assert sorted(i["figure"] for i in state["images"]) == sorted(f"figure-{n}" for n in expected)
    for image in state["images"]:
        assert image["inline"] and image["complete"], image
        assert image["width"] > 100 and image["height"] > 100, image
    assert state["external"] == 0


def test_a_broken_figure_would_be_seen(browser, page, tmp_path):
    # The same check on a copy with one image's bytes cut short: the browser cannot decode it.
    text = page.read_text(encoding="utf-8")
    start = text.index("data:image/png;base64,") + len("data:image/png;base64,")
    broken = tmp_path / "broken.html"
    broken.write_text(text[:start] + "iVBORw0KGgo" + text[start + 4000:], encoding="utf-8")
    images = page_state(browser, broken)["images"]
    assert sum(i["width"] == 0 for i in images) == 1


def test_tables_hold_the_record_numbers(browser, page, tiny):
    tables = page_state(browser, page)["tables"]
    runs = report.load_runs([tiny])
    by_model = report.group_by_model(runs)
    # The verdict: every cell the text summary prints, and the exact ratio behind it.
    v = report.verdict(by_model, "vgg", "vgg_bn")
    shown = tables["verdict-vgg-vgg_bn"][0]
    assert [[c["text"] for c in row] for row in shown] == [list(r) for r in verdict_table(v)]
    assert len(shown) == len(v.rows) >= 5
    for row, cells in zip(v.rows, shown):
        assert float(cells[1]["value"]) == row.per_step.ratio
        # The interval's ends, whatever the wording for few seeds (its column heading says).
        low, high = row.per_step.low, row.per_step.high
        assert f"{low:.3g}" in cells[2]["text"] and f"{high:.3g}" in cells[2]["text"]
    # The accuracy table against the record's own arrays (h5py, not the library's reader).
    with h5py.File(tiny, "r") as f:
        last = {run_id: (f[f"runs/{run_id}/eval/test_acc"][-1], f[f"runs/{run_id}/steps_done"][()],
                         f[f"runs/{run_id}/status"][()].decode()) for run_id in f["runs"]}
    accuracy = tables["accuracy"][0]
    assert [row[0]["text"] for row in accuracy] == ["vgg", "vgg_bn"]
    for row in accuracy:
        # Accuracies in % on every table of the page (the value behind the cell too).
        truth = 100 * np.median([last[f"{row[0]['text']}_lr0.001_s{s}"][0] for s in (0, 1)])
        assert float(row[3]["value"]) == pytest.approx(truth, rel=1e-6)
        assert row[3]["text"] == f"{truth:.1f}"
    runs_table = tables["runs"][0]
    assert sorted(row[0]["text"] for row in runs_table) == sorted(last)
    for row in runs_table:
        acc, steps, status = last[row[0]["text"]]
        assert (row[5]["text"], int(row[6]["value"])) == (status, steps)
        assert float(row[8]["value"]) == pytest.approx(100 * acc, rel=1e-6)
        assert row[7]["text"]  # the plateau
    assert any("subset" in line for line in page_state(browser, page)["warnings"])


def test_page_is_valid_html(page):
    text = page.read_text(encoding="utf-8")
    html5lib.HTMLParser(strict=True).parse(text)
    # The parser does reject what is not HTML: the same page with a stray end tag.
    with pytest.raises(html5lib.html5parser.ParseError):
        html5lib.HTMLParser(strict=True).parse(text.replace("</main>", "</main></td>"))
    assert page.stat().st_size < 3_000_000


def test_warnings_name_diverged_runs_and_differing_records(tiny, tmp_path):
    diverged = tmp_path / "diverged.h5"
    record(RecordConfig(models=("vgg",), lrs=(1e4,), optimizer="sgd", **TINY), diverged)
    runs = report.load_runs([tiny, diverged])
    study = study_report(runs)
    warnings = study.section("warnings").blocks[0].lines
    with h5py.File(diverged, "r") as f:
        step = int(f["runs/vgg_lr10000/diverged_step"][()])
    assert step >= 0
    assert any(f"vgg_lr10000 (diverged.h5): diverged at step {step}" in w for w in warnings)
    assert any(w.startswith("The records differ in optimizer: adam (tiny.h5), sgd") for w in warnings)
    status = {row[0].text: row[5].text for row in study.section("runs").blocks[0].rows}
    assert status["vgg_lr10000"] == f"diverged at step {step}"


def test_every_caption_is_in_the_figures_doc():
    text = FIGURES_DOC.read_text(encoding="utf-8")
    doc = " ".join(text.split())
    for name, caption in CAPTIONS.items():
        assert caption in doc, name
    # ... and every figure the doc's table of files lists has a caption of its own.
    listed = re.findall(r"^\| `([a-z_]+)(?:<[a-z]+>)?\.png` \|", text, flags=re.M)
    assert len(listed) >= 8
    for stem in listed:
        assert figure_caption(stem) in CAPTIONS.values(), stem


def test_output_folder_is_a_one_line_error(tiny, tmp_path):
    result = CliRunner().invoke(main, ["report", str(tiny), "-o", str(tmp_path)])
    assert result.exit_code != 0
    assert result.output.count("Error:") == 1 and "is a folder" in result.output


@pytest.fixture(scope="module")
def factored(tmp_path_factory):
    """The tiny record with an axis (batch size 16 and 32): two cells of levels."""
    path = tmp_path_factory.mktemp("html-axes") / "axes.h5"
    record(RecordConfig(models=("vgg", "vgg_bn"), lrs=(1e-3,), seeds=(0, 1),
                        probe=ProbeConfig(every=2), axes={"batch_size": [16, 32]},
                        **{**TINY, "batch_size": 32}), path)
    out = path.with_suffix(".html")
    result = CliRunner().invoke(main, ["report", str(path), "-o", str(out), "--dpi", "60"])
    assert result.exit_code == 0, result.output
    return path, out


def test_a_record_with_axes_shows_the_verdict_of_each_level_and_the_ablation_table(
        browser, factored):
    from landscape.report.ablation import ablation_cells

    path, page = factored
    state = page_state(browser, page)
    runs = report.load_runs([path])
    levels = report.level_verdicts(runs)
    assert [dict(v.levels) for v in levels] == [{"batch_size": 16}, {"batch_size": 32}]
    tables = state["tables"]
    # Pooled over batch sizes a verdict or an accuracy would mix settings: only per level.
    assert "verdict-vgg-vgg_bn" not in tables and "accuracy" not in tables
    assert len(tables["levels"]) == 2
    for v, shown in zip(levels, tables["levels"]):
        assert [[c["text"] for c in row] for row in shown] == \
            [list(r) for r in verdict_table(v.verdict)]
        for row, cells in zip(v.verdict.rows, shown):
            assert float(cells[1]["value"]) == row.per_step.ratio
    # The two levels' numbers differ (each table is its own cell's, not one table twice).
    assert tables["levels"][0] != tables["levels"][1]
    html = page.read_text(encoding="utf-8")
    assert "At batch_size=16: vgg (no BN) vs vgg_bn (BN)" in html
    assert "batch 16, 32 (an axis)" in html  # not the record's base batch size
    for line in report.verdict_changes(levels):
        assert line.replace("'", "&#39;") in html
    # The ablation table: the summary's cells, the exact medians behind them.
    rows = report.ablation_rows(runs)
    _, texts, keys = ablation_cells(rows)
    shown = tables["ablation"][0]
    assert [[c["text"] for c in row] for row in shown] == texts
    acc = keys.index("final_test_acc")
    for row, cells in zip(rows, shown):
        assert float(cells[acc]["value"]) == pytest.approx(100 * row["final_test_acc"], rel=1e-12)
        assert "seconds" not in keys  # wall-clock time: a table of its own
    timings = tables["ablation"][1]
    for row, cells in zip(rows, timings):
        assert float(cells[-1]["value"]) == pytest.approx(row["seconds"], rel=1e-12)
        assert cells[1]["text"] == str(row["batch_size"])
    html5lib.HTMLParser(strict=True).parse(html)


def test_a_record_without_axes_has_the_ablation_table_after_its_verdicts(tiny):
    study = study_report(report.load_runs([tiny]))
    keys = [s.key for s in study.sections]
    assert keys == ["run", "verdict-vgg-vgg_bn", "accuracy", "ablation", "runs", "warnings"]
