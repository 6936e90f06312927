"""`landscape record --executor local|ray`: the options that say how the runs are scheduled
(not what they measure), and the Ray sweep's progress display."""

from __future__ import annotations

import contextlib
import sys
from typing import Mapping

import click
import torch
from click.core import ParameterSource
from tqdm import tqdm

from landscape.errors import ConfigError
from landscape.sweep import LocalExecutor, RayExecutor, RayOptions
from landscape.sweep.ray_cluster import import_ray
from landscape.sweep.ray_progress import RunProgress

EXECUTOR_OPTIONS = ("executor", "ray_address", "cpus_per_run", "gpus_per_run", "threads_per_run")


def executor_options(command):
    """The executor options, added to a click command."""
    options = [
        click.option("--executor", type=click.Choice(["local", "ray"]), default="local",
                     show_default=True,
                     help="local: the runs one after another in this process; ray: every run "
                          "a Ray task, in parallel (pip install bn-landscape[ray]; see "
                          "docs/scaling.md)."),
        click.option("--ray-address", default="local", show_default=True,
                     help="--executor ray: 'local' starts Ray on this machine for the sweep; "
                          "'auto' joins the cluster started here with `ray start`; host:port "
                          "joins that cluster."),
        click.option("--cpus-per-run", type=float, default=None,
                     help="--executor ray: CPUs each run reserves [default: its torch threads "
                          "on a CPU, 1 on CUDA]."),
        click.option("--threads-per-run", type=int, default=None,
                     help="--executor ray: torch threads in each run [default: as many as a "
                          "local run here uses]. A CPU record equals the local executor's only "
                          "at the same count; fewer (e.g. 1) run more runs at once, and their "
                          "numbers differ by rounding that training amplifies."),
        click.option("--gpus-per-run", type=float, default=None,
                     help="--executor ray: GPUs each run reserves; fractions pack several "
                          "runs on one GPU (0.25: four) [default: 1 on CUDA, 0 on a CPU]."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def pop_executor(ctx: click.Context, options: dict):
    """Take the executor options out of `options`; None for the local executor, else the
    RayOptions. Ray options given with the local executor are refused."""
    values = {name: options.pop(name) for name in EXECUTOR_OPTIONS}
    if values["executor"] == "local":
        given = [name for name in EXECUTOR_OPTIONS[1:]
                 if ctx.get_parameter_source(name) is not ParameterSource.DEFAULT]
        if given:
            flag = "--" + given[0].replace("_", "-")
            raise ConfigError(f"{flag} applies to --executor ray")
        return None
    import_ray()  # a missing Ray is said before anything else happens
    options = RayOptions(address=values["ray_address"], cpus_per_run=values["cpus_per_run"],
                         gpus_per_run=values["gpus_per_run"],
                         threads_per_run=values["threads_per_run"])
    options.check_threads()  # before the line that names the count
    return options


class RayProgress:
    """One bar for the whole sweep (steps of every run) and a line per run as it ends."""

    def __init__(self, bar: tqdm, n_runs: int) -> None:
        self._bar, self._n_runs, self._ended = bar, n_runs, 0

    def update(self, runs: Mapping[str, RunProgress]) -> None:
        done = sum(r.done for r in runs.values())
        if runs and self._bar.total is None:  # every run of a record plans as many steps
            self._bar.total = max(r.planned for r in runs.values()) * self._n_runs
        running = sum(1 for r in runs.values() if r.done < r.planned)
        self._bar.set_postfix_str(f"{running} running, {self._ended}/{self._n_runs} ended"
                                  f"{probes_text(runs)}", refresh=False)
        self._bar.update(done - self._bar.n)

    def finished(self, result) -> None:
        self._ended += 1
        o = result.outcome
        tqdm.write(f"[{self._ended}/{self._n_runs}] {result.plan.run_id}: {o.status}, "
                   f"{o.steps_done} steps, last loss {o.final_loss:.4g}", file=sys.stderr)


def probes_text(runs: Mapping[str, RunProgress], shown: int = 2) -> str:
    """'; hessian (step 40) in vgg_bn_lr0.1, and 2 more': the slow probes running, so that a
    sweep inside Hessian probes (a minute a step on a CPU) does not look hung."""
    probing = [f"{r.probe} in {run_id}" for run_id, r in sorted(runs.items()) if r.probe]
    if not probing:
        return ""
    more = f", and {len(probing) - shown} more" if len(probing) > shown else ""
    return "; " + ", ".join(probing[:shown]) + more


@contextlib.contextmanager
def ray_progress(n_runs: int, total_steps: int):
    with tqdm(total=total_steps, desc=f"{n_runs} runs on Ray", unit="step",
              dynamic_ncols=True, leave=True) as bar:
        yield RayProgress(bar, n_runs)


@contextlib.contextmanager
def executor_for(ray_options, local_progress, n_runs: int, total_steps: int | None):
    """The executor `landscape.record`/`landscape.resume` hand the runs to, with its progress
    display: a bar per run (`local_progress`) locally, one bar for the sweep on Ray (its total
    is known at once for a new record, once a run reports when resuming)."""
    if ray_options is None:
        yield LocalExecutor(local_progress)
        return
    threads = ray_options.threads()
    click.echo(f"Ray: {threads} torch thread(s) per run (a local run here uses "
               f"{torch.get_num_threads()}; records are identical at the same count)", err=True)
    with ray_progress(n_runs, total_steps) as progress:
        yield RayExecutor(ray_options, progress)
