"""A record of schema version 2 (before probe directions, seeds and activation histograms) reads
as it was measured and resumes into the current version."""

import json

import h5py
import numpy as np

import landscape
from landscape.config import RecordConfig
from landscape.report import activation_histograms, group_by_model, load_runs, probe_bands
from landscape.store import SCHEMA_VERSION
from landscape.sweep import record, resume
from landscape.store.schema import SCHEMA_VERSION


def _as_version_2(path):
    """Rewrite a fresh record the way version 2 wrote it: no probe/distance, no activation
    histograms, a single "seed" and a probe without direction in the configuration."""
    with h5py.File(path, "r+") as f:
        f.attrs["schema_version"] = 2
        config = json.loads(f.attrs["config"])
        config["seed"] = config.pop("seeds")[0]
        for key in ("direction", "dtype"):
            config["probe"].pop(key)
        f.attrs["config"] = json.dumps(config)
        for run in f["runs"].values():
            del run.attrs["factors"], run.attrs["config"]  # version 4's
            for table, column in [("probe", "distance")] + [
                    (f"activations/{layer}", "hist") for layer in run.get("activations", {})]:
                del run[table][column]
                run[table].attrs["columns"] = [c for c in run[table].attrs["columns"]
                                               if c != column]
            for layer in run.get("activations", {}).values():
                del layer.attrs["hist_edges"]
        last = f["runs"][json.loads(f.attrs["run_ids"])[-1]]
        last["status"][()] = np.bytes_("interrupted")
        last["stop_reason"][()] = np.bytes_("")


def test_a_version_2_record_reads_and_resumes_into_the_current_version(tmp_path):
    config = RecordConfig(models=("vgg_light", "vgg_light_bn"), lrs=(0.05,), optimizer="sgd",
                          max_steps=4, subset=128, batch_size=32, width=0.5, device="cpu",
                          probe=landscape.ProbeConfig(every=2), activation_every=2,
                          activation_layers=("features.stage1.norm1",))
    path = tmp_path / "r.h5"
    record(config, path)
    fresh = landscape.open_record(path)
    reference = {r: fresh.load(r) for r in fresh.runs}
    _as_version_2(path)

    old = landscape.open_record(path)
    assert old.schema_version == 2
    for run_id, data in reference.items():
        probe = old.load(run_id).probe
        # Plain SGD probed along the gradient: the distance read back is η‖g_t‖.
        np.testing.assert_allclose(probe.distance, data.probe.distance, rtol=1e-6)
        assert old.load(run_id).activations["features.stage1.norm1"].hist is None
    runs = load_runs([path])
    np.testing.assert_allclose(probe_bands(runs[0]).beta, reference[runs[0].run_id].probe.beta,
                               rtol=1e-5)

    resume(path)  # the interrupted run restarts (no checkpoint) and the record is upgraded
    new = landscape.open_record(path)
    assert new.schema_version == SCHEMA_VERSION and all(r.complete for r in new.runs.values())
    for run_id, info in new.runs.items():  # version 4's attributes, from the old configuration
        assert info.factors == {} and "config" in info.attrs
        assert RecordConfig.from_dict(info.config) == \
            RecordConfig.from_dict(fresh.runs[run_id].config)
    first, last = list(new.runs)
    np.testing.assert_array_equal(new.load(last).steps.loss, reference[last].steps.loss)
    np.testing.assert_array_equal(new.load(last).activations["features.stage1.norm1"].hist,
                                  reference[last].activations["features.stage1.norm1"].hist)
    # The run that finished under version 2 has no histograms: −1 rows, left out of figures.
    assert (new.load(first).activations["features.stage1.norm1"].hist == -1).all()
    shown = activation_histograms(group_by_model(load_runs([path])))
    assert [h.model for h in shown] == ["vgg_light_bn"]
