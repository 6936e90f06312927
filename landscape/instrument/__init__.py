"""The instrument for any model in any loop: `Recorder` (a run of a user's loop into a record)
and what `landscape record`'s runs share with it (the probes a recording asks for, the run's
layout read from its model)."""

from landscape.instrument.recorder import Recorder, argmax_correct, cross_entropy_loss

__all__ = ["Recorder", "argmax_correct", "cross_entropy_loss"]
