"""The verdicts pair runs by the network without its normalization (`family`) and the
normalization (`norm`), run attributes every run stores: any network with and without a
normalization gives a verdict per kind "vs no normalization", not only the pairs the model
table lists twice; older records without the attributes read them from the table."""

from __future__ import annotations

import shutil

import h5py
import pytest

from landscape import report
from landscape.config import ProbeConfig, RecordConfig
from landscape.plot import model_name
from landscape.store import open_record
from landscape.sweep import record

TINY = dict(width=0.125, subset=128, batch_size=32, max_steps=6, taps=())


@pytest.fixture(scope="module")
def three_kinds(tmp_path_factory, one_thread):
    """vgg_light without normalization, with BatchNorm and with l1 normalization, 2 seeds."""
    path = tmp_path_factory.mktemp("pairing") / "kinds.h5"
    record(RecordConfig(models=("vgg_light", "vgg_light_bn", "vgg_light_l1"), lrs=(0.05,),
                        optimizer="sgd", seeds=(0, 1), probe=ProbeConfig(every=2), **TINY),
           path)
    return path


def test_every_run_stores_its_family_and_normalization(three_kinds):
    runs = open_record(three_kinds).runs.values()
    assert {(r.model, r.family, r.norm) for r in runs} == {
        ("vgg_light", "vgg_light", "none"), ("vgg_light_bn", "vgg_light", "bn"),
        ("vgg_light_l1", "vgg_light", "l1")}


def test_each_kind_is_compared_with_no_normalization(three_kinds):
    by_model = report.group_by_model(report.load_runs([three_kinds]))
    assert report.norm_pairs(by_model) == [("vgg_light", "vgg_light_bn"),
                                           ("vgg_light", "vgg_light_l1")]
    text = report.summary_text(by_model)
    assert text.startswith("vgg_light (no BN) vs vgg_light_bn (BN): sgd")
    assert "\nvgg_light (no normalization) vs vgg_light_l1 (l1 norm): sgd" in text
    assert "ratio = median without l1 norm / median with l1 norm" in text
    l1 = report.verdict(by_model, "vgg_light", "vgg_light_l1")
    assert l1.norm == "l1" and l1.kind == "l1 norm"
    words = {row[3] for row in report.verdicts.verdict_table(l1)}  # over all steps
    assert words <= {"smoother with l1 norm (every seed)", "rougher with l1 norm (every seed)",
                     "seeds disagree"}, words
    assert any("with l1 norm" in w for w in words)


def _rewrite(path, identities):
    """Give every run the (model, family, norm) that `identities` maps its model to (None:
    drop the attribute, as a record written before runs stored it)."""
    with h5py.File(path, "r+") as f:
        for group in f["runs"].values():
            model, family, norm = identities[group.attrs["model"]]
            group.attrs["model"] = model
            for key, value in (("family", family), ("norm", norm)):
                if value is None:
                    group.attrs.pop(key, None)
                else:
                    group.attrs[key] = value


def test_a_network_outside_the_table_pairs_by_its_attributes(three_kinds, tmp_path):
    """Runs the way a user's loop records them (landscape.Recorder): a model name the table
    does not know, with its family and kind."""
    path = shutil.copy(three_kinds, tmp_path / "user.h5")
    _rewrite(path, {"vgg_light": ("mynet", "mynet", "none"),
                    "vgg_light_bn": ("mynet_gn", "mynet", "gn"),
                    "vgg_light_l1": ("other_bn", "other", "bn")})
    by_model = report.group_by_model(report.load_runs([path]))
    assert list(by_model) == ["mynet", "mynet_gn", "other_bn"]
    assert report.norm_pairs(by_model) == [("mynet", "mynet_gn")]  # "other" has no plain run
    text = report.summary_text(by_model)
    assert text.startswith("mynet (no normalization) vs mynet_gn (GN): sgd")
    assert model_name("mynet_gn", list(by_model)) == "mynet_gn (GroupNorm)"
    assert model_name("mynet", list(by_model)) == "mynet (no normalization)"
    assert model_name("other_bn", list(by_model)) == "other_bn"  # no partner: as it is


def test_older_records_read_family_and_norm_from_the_model_table(three_kinds, tmp_path):
    path = shutil.copy(three_kinds, tmp_path / "old.h5")
    _rewrite(path, {m: (m, None, None) for m in ("vgg_light", "vgg_light_bn", "vgg_light_l1")})
    runs = report.load_runs([path])
    assert all(r.info.family is None and r.info.norm is None for r in runs)
    assert {(r.model, r.family, r.norm) for r in runs} == {
        ("vgg_light", "vgg_light", "none"), ("vgg_light_bn", "vgg_light", "bn"),
        ("vgg_light_l1", "vgg_light", "l1")}
    assert len(report.norm_pairs(report.group_by_model(runs))) == 2
