"""The probes a run's recording configuration asks for, built for its model: the same list for
`landscape record`'s runs and for a `landscape.Recorder` in a user's loop."""

from __future__ import annotations

from torch import nn

from landscape.config.recording import RecordingConfig
from landscape.probes import ActivationProbe, GradientProbe, ICSProbe, WeightsProbe
from landscape.probes.hessian import hessian_probes


def make_probes(recording: RecordingConfig, model: nn.Module) -> list:
    """The gradient/update probe, ICS, activation statistics, kept weights and Hessian probes
    `recording` turns on, in the order their rows are measured within a step."""
    names = [n for n, _ in model.named_parameters()]
    probes: list = []
    if recording.probe.every:
        probes.append(GradientProbe(recording.probe, names=names))
    if recording.ics_every:
        probes.append(ICSProbe(every=recording.ics_every, layers=recording.ics_layers,
                               names=names))
    for layer in recording.activation_layers if recording.activation_every else ():
        probes.append(ActivationProbe(model, layer, every=recording.activation_every))
    if recording.saves_weights:
        probes.append(WeightsProbe(model, every=recording.save_weights_every,
                                   at=recording.save_weights_at,
                                   final=recording.save_final_weights,
                                   best=recording.keep_best))
    probes.extend(hessian_probes(recording.hessian))
    return probes
