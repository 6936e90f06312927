"""Every probe works on every family of the model table, with and without BatchNorm."""

import numpy as np
import pytest

import landscape
from landscape.config import ProbeConfig, RecordConfig

pytestmark = pytest.mark.usefixtures("one_thread")

FAMILIES = {  # model pair -> (layer for ICS, layer for activation statistics, the "final" tap)
    ("resnet20", "resnet20_bn"): ("stages.stage2.block1.conv1", "stem.norm", "fc.weight"),
    ("resnet18", "resnet18_bn"): ("stages.stage2.block1.conv1", "stem.norm", "fc.weight"),
    ("cnn3", "cnn3_bn"): ("features.block2.conv", "features.block1.norm",
                          "classifier.fc.weight"),
    ("lenet", "lenet_bn"): ("features.conv2", "features.norm1", "classifier.fc3.weight"),
}


@pytest.mark.parametrize("models", list(FAMILIES), ids=lambda m: m[0])
def test_every_probe_records_on_every_family(tmp_path, cifar_dir, models):
    ics_layer, activation_layer, final = FAMILIES[models]
    config = RecordConfig(
        models=models, lrs=(0.05,), optimizer="sgd", width=0.125, batch_size=32, max_steps=3,
        device="cpu", data_dir=str(cifar_dir), verify_md5=False,
        probe=ProbeConfig(every=1, count=3), ics_every=1, ics_layers=(ics_layer,),
        activation_every=1, activation_layers=(activation_layer,))
    landscape.record(config, tmp_path / "r.h5")
    rec = landscape.open_record(tmp_path / "r.h5")
    for run in rec.runs.values():
        assert run.status == "complete" and run.taps == (final,)
        data = rec.load(run.run_id)
        assert data.probe.loss.shape == (3, 3) and np.all(np.isfinite(data.probe.beta))
        assert data.ics.distance.shape == (3, 1) and np.all(data.ics.distance > 0)
        assert data.activations[activation_layer].mean.shape[0] == 3
        assert rec.tap(run.run_id, run.taps[0]).grad.shape[0] == 3
