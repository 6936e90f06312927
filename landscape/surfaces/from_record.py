"""A loss surface around the weights a record kept at a step, computed on the record's own data
and stored in the record as it is computed (what `landscape surface` runs).

The record is rebuilt as it trained: the run's model with the weights kept at the start of
step S (`landscape.kept.models.load_model`), the task from the record's configuration (its
data checked against the identity the record keeps), and either the step's own batch B_S
(`batch="step"`: the stream of the run's seed replayed to step S, so that with `bn="train"` the
centre of the surface is the recorded loss L(w_S; B_S)) or the first N training images in
batches of the run's batch size (`batch="images"`, unaugmented).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Literal

import numpy as np
import torch

from landscape.config import MAX_SEED, RecordConfig, record_config
from landscape.data import BatchStream, eval_batches
from landscape.errors import ConfigError, RecordError, RecordWriteError
from landscape.instrument.user_run import check_rebuildable
from landscape.kept.models import load_model
from landscape.store import Record, RecordWriter, RunStatus, SurfaceData, open_record
from landscape.store import write_error_reason
from landscape.surfaces.checkpoint import PointKeeper, remove_points, restore_points
from landscape.surfaces.directions import BN_PARAMS, random_directions, update_directions
from landscape.surfaces.evaluate import BN_MODES, GridEvaluator
from landscape.surfaces.grid import check_grid, coordinates, grid_coefficients
from landscape.store.lock import real_path, writer_lock
from landscape.sweep.plans import check_resume_compatible, resolve_device
from landscape.training.tasks import ImageClassification, Task, add_penalty, make_task
from landscape.training.tuning import FORMATS

DIRECTIONS = ("random", "update")
BATCHES = ("step", "images")


@dataclass(frozen=True)
class SurfaceOptions:
    """What a surface is: everything that changes its values (stored as the surface's
    attributes; a surface is resumed only with the same options)."""

    step: int
    dims: int = 2
    points: int = 21
    low: float = -1.0
    high: float = 1.0
    seed: int = 0
    direction: Literal["random", "update"] = "random"
    # One-dimensional parameters in random directions (see directions.filter_normalize);
    # "all" for update directions, which move every parameter as the update did.
    bn_params: str = "ignore"
    bn: Literal["train", "eval"] = "train"
    batch: Literal["step", "images"] = "step"
    images: int | None = None  # with batch="images": how many (None: 1024)

    def __post_init__(self) -> None:
        check_grid(self.dims, self.points, self.low, self.high)
        if self.direction not in DIRECTIONS:
            raise ConfigError(f"--direction must be one of {', '.join(DIRECTIONS)}, "
                              f"got {self.direction!r}")
        if self.direction == "random" and self.bn_params not in BN_PARAMS:
            raise ConfigError(f"--bn-params must be one of {', '.join(BN_PARAMS)}, "
                              f"got {self.bn_params!r}")
        if self.direction == "update" and self.bn_params != "all":
            raise ConfigError("--bn-params applies to random directions; --direction update "
                              "moves every parameter as the updates did")
        if self.bn not in BN_MODES:
            raise ConfigError(f"--bn must be one of {', '.join(BN_MODES)}, got {self.bn!r}")
        if self.batch not in BATCHES:
            raise ConfigError(f"--batch must be one of {', '.join(BATCHES)}, got {self.batch!r}")
        if self.batch == "step" and self.images is not None:
            raise ConfigError("--images applies to --batch images; --batch step uses the "
                              "step's own batch")
        if self.images is not None and self.images < 1:
            raise ConfigError(f"--images must be at least 1, got {self.images}")
        if not 0 <= self.seed <= MAX_SEED:  # the bound of a record's seeds
            raise ConfigError(f"--seed must be a whole number from 0 to {MAX_SEED:,}, got "
                              f"{self.seed}")

    @property
    def default_name(self) -> str:
        return f"step{self.step}_{self.dims}d_{self.direction}_bn-{self.bn}"

    def attrs(self, images: int) -> dict:
        """The surface's stored attributes, with the number of images it is evaluated on."""
        return {**asdict(self), "images": images}


def record_surface(path: str | Path, run_id: str, options: SurfaceOptions, *,
                   name: str | None = None, device: str = "cpu", chunk: int | None = None,
                   compile: bool = False,
                   data_dir: str | None = None,
                   progress: Callable[[int, int], None] | None = None,
                   should_stop: Callable[[], bool] = lambda: False) -> SurfaceData:
    """Compute (or continue) the surface `name` (default `options.default_name`) of run
    `run_id` of the record at `path` and store it there, a chunk of grid points at a time.

    Everything that can be wrong is checked before the record is opened for writing. Points
    already computed (an interrupted surface) are kept and not computed again.
    `progress(done, total)` is called after every chunk; when `should_stop()` says yes the
    surface stops after its current chunk (and resumes from there when asked again).
    """
    # Through a symbolic link, the surface goes into the file it names (the link stays).
    path = real_path(path)
    open_record(path)  # a missing or foreign file is named before a lock file is made for it
    with writer_lock(path):  # one writer per record: a surface is one (landscape.writer_lock)
        return _record_surface_locked(path, run_id, options, name=name, device=device,
                                      chunk=chunk, compile=compile, data_dir=data_dir,
                                      progress=progress,
                                      should_stop=should_stop)


def _record_surface_locked(path: Path, run_id: str, options: SurfaceOptions, *,
                           name: str | None, device: str, chunk: int | None, compile: bool,
                           data_dir: str | None, progress: Callable[[int, int], None] | None,
                           should_stop: Callable[[], bool]) -> SurfaceData:
    record = open_record(path)  # read again under the lock: as the last writer left it
    check_rebuildable(record.config, path, "compute a loss surface")
    check_run(record, run_id)
    name = name or options.default_name
    if not name or "/" in name:
        raise ConfigError(f"--name must be a non-empty name without '/', got {name!r}")
    kept = {int(s) for s in record.weight_steps(run_id)}
    check_weight_steps(record, run_id, options, kept)
    config = record_config(record)
    changes = {"device": str(resolve_device(device))}
    if data_dir is not None:
        changes["data_dir"] = data_dir
    config = config.with_changes(**changes)
    task = make_task(config, torch.device(config.device))
    check_resume_compatible(path, config, data_now=task.identity.to_dict(),
                            data_then=record.data)
    # The memory format the run trained in (measured faster on the machine that recorded it;
    # the same values to float32 rounding): records before the choice have none.
    trained_in = record.runs[run_id].attrs.get("memory_format")
    if trained_in is not None:
        task = task.using(FORMATS[str(trained_in)])
    dev = torch.device(config.device)
    model, _ = load_model(record, run_id, options.step, dev)
    model = model.to(memory_format=task.memory_format)
    batches = surface_batches(task, record, run_id, options, config)
    n_images = sum(len(y) for _, y in batches)
    existing = record.surfaces(run_id).get(name)
    if existing is not None:
        check_same_options(run_id, name, existing.options, options.attrs(n_images))

    directions = make_directions(record, run_id, options, model, dev)
    evaluator = GridEvaluator(model, batches, directions, objective=task.loss_fn,
                              correct_fn=task.correct_fn,
                              penalty=penalty(config.optim.l1, config.optim.l2),
                              bn=options.bn, seed=options.seed, chunk=chunk, compile=compile)
    alpha = coordinates(options.points, options.low, options.high)
    # Written into a copy that replaces the record once the surface stops (complete, or asked
    # to stop): a failed write (full disk) or a kill never touches what the record holds.
    writer = RecordWriter.beside(path, extra_bytes=surface_bytes(options))
    try:
        attrs = options.attrs(n_images)
        try:
            surface = writer.surface(run_id, name, attrs, alpha)
            restore_points(surface, path, run_id, name, attrs, alpha)  # a killed run's
        except (OSError, RuntimeError) as exc:  # h5py's write errors
            raise writer.write_failed(exc) from exc
        writer.start_appending()
        keep = PointKeeper(path, run_id, name, attrs, alpha, surface.grids(),
                           config.recording.flush_seconds)
        _fill(surface, writer, evaluator, alpha, progress, should_stop, keep)
        writer.commit()
        remove_points(path)  # in the record now
    except RecordWriteError as exc:  # disk full, file-size limit: the copy is dropped
        writer.discard()
        reason = write_error_reason(exc.__cause__ or exc)
        raise RecordWriteError(
            f"cannot add the surface {name!r} to {path}: {reason}; {path} is unchanged and "
            f"the partial copy was removed: make room and run the same command again") from exc
    except KeyboardInterrupt:  # stopped at once: keep the points computed so far
        writer.commit()
        remove_points(path)
        raise
    except BaseException:
        writer.discard()
        raise
    return open_record(path).surfaces(run_id)[name]


def _fill(surface, writer: RecordWriter, evaluator: GridEvaluator, alpha: np.ndarray,
          progress: Callable[[int, int], None] | None, should_stop: Callable[[], bool],
          keep: Callable[..., None]) -> None:
    """Compute the surface's missing points a chunk at a time, flushing after each (and
    keeping them beside the record every flush interval: `keep`)."""
    todo = np.nonzero(~surface.done)
    total = surface.done.size
    done = total - len(todo[0])
    if progress is not None:
        progress(done, total)
    for start in range(0, len(todo[0]), evaluator.chunk):
        index = tuple(i[start:start + evaluator.chunk] for i in todo)
        loss, accuracy = evaluator(grid_coefficients(alpha, index))
        try:
            surface.write(index, loss.numpy(), accuracy.numpy())
        except (OSError, RuntimeError) as exc:  # h5py's write errors
            raise writer.write_failed(exc) from exc
        writer.flush()
        keep(index, loss.numpy(), accuracy.numpy())
        done += len(index[0])
        if progress is not None:
            progress(done, total)
        if should_stop():
            break


def surface_bytes(options: SurfaceOptions) -> int:
    """What a surface adds to a record: its grids of loss, accuracy (float64) and done."""
    return options.points ** options.dims * (8 + 8 + 1) + 8 * options.points


def check_run(record: Record, run_id: str) -> None:
    if run_id not in record.runs:
        raise RecordError(f"{record.path} has no run {run_id!r}; its runs: "
                          f"{', '.join(record.runs)}")
    running = [r.run_id for r in record.runs.values() if r.status == RunStatus.RUNNING]
    if running:
        raise RecordError(
            f"run {running[0]!r} of {record.path} is still running (being recorded, or its "
            f"writer stopped: finish it with landscape record --resume {record.path}); "
            f"compute surfaces once no run is running")


def check_weight_steps(record: Record, run_id: str, options: SurfaceOptions,
                       kept: set[int]) -> None:
    """Refuse a step whose weights (or, for update directions, whose neighbours' weights) the
    run did not keep, naming the missing steps and how to keep them."""
    s = options.step
    if options.direction == "update" and options.dims == 2 and s == 0:
        raise RecordError("--direction update --dims 2 at step 0: there is no update before "
                          "the first step; use --dims 1 or a later step")
    if options.direction == "update":
        needed = [s, s + 1] if options.dims == 1 else [s - 1, s, s + 1]
        what = f"--direction update at step {s} needs the weights of steps " \
               f"{', '.join(map(str, needed))}"
    else:
        needed = [s]
        what = f"a surface at step {s} needs the weights of step {s}"
    missing = [n for n in needed if n not in kept]
    if missing:
        have = ", ".join(map(str, sorted(kept)[:20])) or "none"
        raise RecordError(
            f"{what}; run {run_id!r} did not keep step(s) {', '.join(map(str, missing))} (it "
            f"kept steps {have}); record with --save-weights-at "
            f"{','.join(map(str, needed))}")
    if options.batch == "step" and s >= record.runs[run_id].steps_done:
        raise RecordError(f"--batch step: step {s} is the weights after the last step of run "
                          f"{run_id!r}, which has no batch; use --batch images")


def check_same_options(run_id: str, name: str, then: dict, now: dict) -> None:
    differ = [f"{k} {then.get(k)} then, {v} now" for k, v in now.items() if then.get(k) != v]
    if differ:
        raise RecordError(f"run {run_id!r} already has a surface {name!r} made with other "
                          f"options ({'; '.join(differ)}); give another --name to keep both")


def surface_batches(task: Task, record: Record, run_id: str, options: SurfaceOptions,
                    config: RecordConfig) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The data of the surface: the step's batch, or the first N training images in batches
    of the run's batch size (unaugmented, normalized as in training)."""
    if options.batch == "step":
        seed = int(record.runs[run_id].attrs.get("seed", 0))
        return [step_batch(task.stream(seed), options.step)]
    n = options.images or 1024
    batch_size = config.optim.batch_size
    if isinstance(task, ImageClassification):
        if n > len(task.train):
            raise ConfigError(f"--images {n}: the record's data have {len(task.train):,} "
                              f"training images")
        batches = eval_batches(task.train, task.options, batch_size=batch_size,
                               memory_format=task.memory_format)
        # The first N images in order: the batches up to them, the last one cut.
        return [(x[:n - i * batch_size], y[:n - i * batch_size]) for i, (x, y) in
                zip(range(-(-n // batch_size)), batches)]
    x, y = task.data.train_x[:n], task.data.train_y[:n]
    if n > len(task.data.train_x):
        raise ConfigError(f"--images {n}: the record's data have {len(task.data.train_x):,} "
                          f"training samples")
    xs, ys = (torch.from_numpy(a).to(task.device) for a in (x, y))
    return [(xs[i:i + batch_size], ys[i:i + batch_size]) for i in range(0, n, batch_size)]


def step_batch(stream, step: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The batch B_step of a freshly seeded stream, as the run drew it at that step."""
    if isinstance(stream, BatchStream):
        # Whole epochs are skipped by drawing their random numbers without building their
        # batches (`restore` with every batch consumed), then the epoch's batch is built.
        per_epoch = stream.steps_per_epoch
        for _ in range(step // per_epoch):
            stream.restore({"generator": stream.generator.get_state(), "consumed": per_epoch})
            for _ in stream.epoch():
                pass
        stream.restore({"generator": stream.generator.get_state(),
                        "consumed": step % per_epoch})
        return next(stream.epoch())
    batches = stream.batches()
    for _ in range(step):
        next(batches)
    return next(batches)


def make_directions(record: Record, run_id: str, options: SurfaceOptions,
                    model: torch.nn.Module, device: torch.device) -> list[dict]:
    params = {n: p.detach() for n, p in model.named_parameters()}
    if options.direction == "random":
        return random_directions(params, options.dims, seed=options.seed,
                                 bn_params=options.bn_params)

    def kept(step: int) -> dict[str, torch.Tensor]:
        state = record.weights(run_id, step).state
        return {n: torch.from_numpy(np.asarray(state[n])).to(device) for n in params}

    at = kept(options.step)
    before = kept(options.step - 1) if options.dims == 2 else None
    return update_directions(at, kept(options.step + 1), before)


def penalty(l1: float, l2: float) -> Callable[[dict], torch.Tensor] | None:
    """The record's ℓ1/ℓ2 terms of the objective at given weights (`tasks.penalized`)."""
    if not (l1 or l2):
        return None

    def value(params: dict[str, torch.Tensor]) -> torch.Tensor:
        tensors = list(params.values())
        return add_penalty(torch.zeros((), device=tensors[0].device), tensors, l1=l1, l2=l2)

    return value
