"""What the framework adapters share: `import landscape` never imports a framework, a missing
extra is one line that says what to install, and both adapters refuse bad options in one line
before any training."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from landscape.errors import ConfigError
from landscape.huggingface import record_to
from landscape.lightning import LandscapeCallback

FRAMEWORKS = ("lightning", "pytorch_lightning", "transformers", "accelerate")


def test_import_landscape_never_imports_a_framework():
    code = ("import sys, landscape, landscape.instrument; "
            f"print([m for m in {FRAMEWORKS!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("module, framework, extra", [
    ("landscape.lightning", "lightning.pytorch", "lightning"),
    ("landscape.huggingface", "transformers", "huggingface"),
])
def test_a_missing_extra_is_one_line_naming_it(monkeypatch, module, framework, extra):
    monkeypatch.setitem(sys.modules, framework, None)  # `import framework` raises ImportError
    monkeypatch.delitem(sys.modules, module, raising=False)
    with pytest.raises(ImportError) as raised:
        importlib.import_module(module)
    message = str(raised.value)
    assert message.endswith(f"pip install bn-landscape[{extra}]") and "\n" not in message
    assert raised.value.__suppress_context__  # the one line, not the import's traceback


@pytest.mark.parametrize("adapter", [LandscapeCallback, record_to])
def test_bad_options_are_refused_before_training(tmp_path, adapter):
    path = tmp_path / "r.h5"
    cases = [
        (dict(probes=3), "unknown option 'probes'; it takes the options of landscape.Recorder"),
        (dict(optimizer=None), "takes optimizer from the framework"),
        (dict(scaler=None), "takes scaler from the framework"),
        (dict(resume=True), "resume=True is for your own loop"),
        (dict(held_out=("a", "b", "c")), "held_out names the held-out loss"),
        (dict(loss_fn="cross_entropy"), "loss_fn must be a function"),
    ]
    for options, message in cases:
        with pytest.raises(ConfigError, match=message):
            adapter(path, run_id="mixer_bn", **options)
    assert not path.exists()
