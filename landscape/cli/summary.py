"""`landscape summary`: a model's layers, output shapes, parameters and MACs per image."""

from __future__ import annotations

import click

from landscape.cli.common import echo_table, user_errors
from landscape.cli._vary import parse_options
from landscape.models import MODELS
from landscape.errors import ConfigError
from landscape.models.norms import NORM_KINDS
from landscape.models.summary import summarize_model


def _shape(shape: tuple[int, ...] | None) -> str:
    return "x".join(map(str, shape)) if shape is not None else "(not called)"


def _right(column: list[str]) -> list[str]:
    width = max(map(len, column), default=0)
    return [v.rjust(width) for v in column]


@click.command(short_help="List a model's layers, output shapes, parameters and MACs.",
               help=f"""Show MODEL's layers for one 32x32x3 image (one input vector for the
deep linear network): output shape, parameters, multiply-accumulates (MACs).

MACs count conv and linear layers only (normalization, activations and pooling count 0).
Models: {", ".join(MODELS)}; or torchvision:NAME, timm:NAME, package.module:factory.""")
@click.argument("model_name", metavar="MODEL")
@click.option("--width", type=float, default=None,
              help="Channel multiplier (default: the model's own, 1).")
@click.option("--norm", default=None,
              help=f"Normalization kind: {', '.join(NORM_KINDS)} (default: the model's own; "
                   f"docs/normalization.md).")
@click.option("--model-option", "model_options", multiple=True, metavar="KEY=VALUE",
              help="A keyword of the model's builder (repeatable), e.g. num_classes=100.")
@user_errors
def summary(model_name: str, width: float | None, norm: str | None,
            model_options: tuple[str, ...]) -> None:
    if norm is not None and norm not in NORM_KINDS:  # one line, as record says it
        raise ConfigError(f"unknown normalization {norm!r}; valid: {', '.join(NORM_KINDS)}")
    options = {k: v for k, v in (("width", width), ("norm", norm)) if v is not None}
    options.update(parse_options(model_options))
    result = summarize_model(model_name, **options)
    params = _right([f"{r.params:,}" for r in result.rows])
    macs = _right([f"{r.macs:,}" for r in result.rows])
    rows = [[r.name, r.layer_type, _shape(r.output_shape), p, m]
            for r, p, m in zip(result.rows, params, macs)]
    echo_table(rows, ["layer", "type", "output", "params", "MACs"])
    shown = ", ".join(f"{k}={v}" for k, v in options.items())
    per = (f"{_shape(result.input_shape)} image" if len(result.input_shape) == 3
           else f"input of shape {_shape(result.input_shape)}")
    click.echo(f"Total: {model_name}{f' ({shown})' if shown else ''}: {result.params:,} "
               f"parameters ({result.trainable_params:,} trainable), {result.macs:,} MACs "
               f"({result.macs / 1e9:.3f} GMAC) per {per}, "
               f"output {_shape(result.output_shape)}")
