"""The learning rate is a level like any factor: a record whose BN verdict on β reverses at one
learning rate (constructed arrays, `reversal_record`: 4x higher with BN at lr 1e-4, 4x lower
at 5e-4 and 1e-3) has its pooled verdict "smoother with BN", and every surface a reader sees
(`landscape plot`'s console and summary.txt, the report page, the README's demo block) names
lr 1e-4 beside it. And no ratio is printed beside a verdict that no seed's own ratio backs."""

from __future__ import annotations

import html
import os
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

import reversal_record
from analyses.confidence import bootstrap_ratio
from landscape import report
from landscape.cli import main
from landscape.report.study import study_report
from landscape.report.verdicts import MetricVerdict, PairVerdict, verdict_table

REVERSAL = ("beta, all steps, vgg_light vs vgg_light_bn: the verdict changes with lr: rougher "
            "with BN (every seed) at lr 0.0001 (0.25 [0.25, 0.25]); smoother with BN (every seed) "
            "at lr 0.0005 (4 [4, 4]), 0.001 (4 [4, 4])")
CAVEAT = "smoother with BN (every seed); at lr 0.0001: rougher with BN (every seed)"


@pytest.fixture(scope="module")
def reversed_record(tmp_path_factory):
    return reversal_record.write(tmp_path_factory.mktemp("reversal") / "reversal.h5")


@pytest.fixture(scope="module")
def groups(reversed_record):
    return report.verdict_groups(report.load_runs([reversed_record]))


def test_the_verdict_at_each_lr_is_the_constructed_one(groups):
    (group,) = groups
    pooled = group.pooled.verdict.row("beta").per_step
    # Pooled over the lrs the median β is lower with BN in every seed: "smoother".
    assert pooled.verdict == "greater" and pooled.ratio == pytest.approx(4.0)
    assert [v.levels for v in group.per_lr] == [{"lr": lr} for lr in reversal_record.LRS]
    for v in group.per_lr:
        for estimate in (v.verdict.row("beta").per_step, v.verdict.row("beta").matched):
            want = 0.25 if v.levels["lr"] == reversal_record.REVERSED_LR else 4.0
            assert estimate.ratio == pytest.approx(want, rel=1e-6)
            np.testing.assert_allclose(estimate.per_seed, want, rtol=1e-6)
            assert estimate.verdict == ("less" if want < 1 else "greater")


def test_level_verdicts_are_the_verdicts_at_each_lr(reversed_record, groups):
    levels = report.level_verdicts(report.load_runs([reversed_record]))
    assert [v.levels for v in levels] == [{"lr": lr} for lr in reversal_record.LRS]
    assert [v.verdict.to_text() for v in levels] == \
        [v.verdict.to_text() for v in groups[0].per_lr]


def test_the_summary_and_the_console_name_the_lr_where_beta_reverses(reversed_record, tmp_path):
    out = tmp_path / "figures"
    result = CliRunner().invoke(main, ["plot", str(reversed_record), "--out", str(out),
                                       "--dpi", "40"])
    assert result.exit_code == 0, result.output
    summary = (out / "summary.txt").read_text(encoding="utf-8")
    for text in (summary, result.output):
        pooled_table = text[:text.index("Initial plateau")]
        beta_row = next(line for line in pooled_table.splitlines() if line.startswith("beta "))
        assert CAVEAT in beta_row  # the pooled verdict's own cell says where it does not hold
        assert REVERSAL in pooled_table  # and the sentence right under the table
        assert "adam, lrs 0.0001, 0.0005, 0.001 pooled" in text
        assert "At lr=0.0001:" in text and "The verdict at each learning rate:" in text


def test_the_report_page_names_the_lr_where_beta_reverses(reversed_record):
    study = study_report(report.load_runs([reversed_record]))
    section = study.section("verdict-vgg_light-vgg_light_bn")
    pooled, changes, *per_lr = section.blocks[:5]
    beta = next(row for row in pooled.rows if row[0].text == "beta")
    assert beta[3].text == CAVEAT
    assert changes.emphasis and REVERSAL in changes.lines
    assert [t.caption.split(":")[0] for t in per_lr] == ["At lr=0.0001", "At lr=0.0005",
                                                          "At lr=0.001"]
    page = reversed_record.with_suffix(".html")
    result = CliRunner().invoke(main, ["report", str(reversed_record), "-o", str(page),
                                       "--dpi", "40"])
    assert result.exit_code == 0, result.output
    text = html.unescape(page.read_text(encoding="utf-8")).replace("<wbr>", "")
    assert REVERSAL in text and CAVEAT in text


def test_the_readme_demo_block_names_the_lr_where_beta_reverses(reversed_record, tmp_path):
    # The README's block is the end of the demo's output (scripts/demo.py `ending`), made from
    # the demo's records: here the reversed record stands in for both.
    from test_docs_blocks import load_script

    for name in ("demo-paper.h5", "demo-course.h5"):
        shutil.copy(reversed_record, tmp_path / name)
    block = load_script("demo").ending(str(tmp_path / "demo"), 61.0, 0.5)
    assert CAVEAT in block and REVERSAL in block
    assert block.endswith("make demo took 1 min 1 s (both presets, their figures and reports, "
                          f"after the install) on {os.cpu_count()} CPU cores, load average 0.5 "
                          "at the start.")


def _verdict_of(per_seed: tuple[float, ...], pooled: float) -> PairVerdict:
    def statistic(seeds):
        return pooled if len(seeds) > 1 else per_seed[int(seeds[0])]

    row = MetricVerdict("beta", bootstrap_ratio(3, statistic), None)
    return PairVerdict("vgg", "vgg_bn", (0, 1, 2), "gradient", "sgd, lr 0.1", "", {}, (row,))


def test_no_ratio_is_printed_beside_a_verdict_no_seed_backs():
    nan = float("nan")
    # No seed has a ratio of its own, the seeds pooled do: the pooled ratio would read as a
    # result beside "no verdict".
    cells = verdict_table(_verdict_of((nan, nan, nan), 1.13))[0]
    assert cells[1:4] == ("-", "-", "no verdict (0 of 3 seeds have a ratio of their own)")
    # Some seeds have one: the ratio says that it is the seeds' pooled one.
    cells = verdict_table(_verdict_of((0.9, nan, 1.2), 1.13))[0]
    assert cells[1:4] == ("1.13 (seeds pooled)", "-",
                          "no verdict (2 of 3 seeds have a ratio of their own)")
    assert verdict_table(_verdict_of((0.9, 1.0, 1.2), 1.13))[0][1] == "1"
