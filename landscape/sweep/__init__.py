"""The runs of a record and who trains them.

`entry` (`record`, `resume`: the one library entry, also `landscape.record` and
`landscape.resume`) plans the runs (`plans`), checks the limits and the machine (`limits`),
takes the writer lock (`landscape.store.lock`), chooses each run's memory format
(`formats`), and hands the runs to an executor (`executor`: the interface; `local`,
`ray_executor` with `ray_cluster`).
`run.train_one` trains one run wherever an executor runs it.
"""

from landscape.sweep.entry import record, resume
from landscape.sweep.executor import Executor, Sweep
from landscape.sweep.local import LocalExecutor
from landscape.sweep.plans import RunPlan, RunResult, check_resume_compatible, plan_runs
from landscape.sweep.plans import resolve_device
from landscape.sweep.ray_cluster import RayOptions
from landscape.sweep.ray_executor import RayExecutor

__all__ = [
    "Executor", "LocalExecutor", "RayExecutor", "RayOptions", "RunPlan", "RunResult", "Sweep",
    "check_resume_compatible", "plan_runs", "record", "resolve_device", "resume",
]
