"""The validated configuration of a record: frozen dataclasses, checked once, written into the
record as one flat JSON dict. The command line only parses text into it.

    RecordConfig
      model: ModelConfig          models, width, dropout
      data: DataConfig            CIFAR-10 folder or subset, validation split, augmentation
      optim: OptimConfig          learning rates, optimizer, schedule, objective, run length
      recording: RecordingConfig  taps, probe (ProbeConfig), ICS, activations, flush/checkpoint,
                                  hessian (HessianConfig), kept weights
      seed, device, allow_tf32, precision

Errors name fields by their path ("optim.lr_min"); the command line shows its flags instead.
"""

from landscape.config.hessian import HessianConfig
from landscape.config.model_data import IMAGE_CLASSIFICATION, DataConfig, ModelConfig
from landscape.config.optim import (MOMENTUM_OPTIMIZERS, OPTIMIZERS, SCHEDULES, OptimConfig,
                                    Optimizer, Schedule)
from landscape.config.presets import PAPER_ACTIVATION_LAYERS, PAPER_ICS_LAYERS, PRESETS, preset
from landscape.config.record import (MAX_SEED, PRECISIONS, RecordConfig, record_config,
                                     resume_differences, run_id, stored_config, total_steps)
from landscape.config.recording import (DEFAULT_TAP, FINAL_TAP, PROBE_SCALES, PROBE_SPACINGS,
                                        TAP_DTYPES, ProbeConfig, RecordingConfig)

__all__ = [
    "RecordConfig", "HessianConfig", "ModelConfig", "DataConfig", "OptimConfig", "RecordingConfig", "ProbeConfig",
    "PRESETS", "preset", "PAPER_ICS_LAYERS", "PAPER_ACTIVATION_LAYERS",
    "OPTIMIZERS", "MOMENTUM_OPTIMIZERS", "SCHEDULES", "Optimizer", "Schedule",
    "IMAGE_CLASSIFICATION", "TAP_DTYPES", "PROBE_SCALES", "PROBE_SPACINGS", "FINAL_TAP",
    "DEFAULT_TAP", "total_steps", "resume_differences", "run_id", "PRECISIONS", "MAX_SEED",
    "record_config", "stored_config",
]
