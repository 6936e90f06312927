"""One training run: the loop (`loop`) and what it is built from.

`contracts` (what the loop calls: probes, recorder, progress), `loop_settings` (what the loop is
told: objective, taps, probes, arithmetic, checkpoints), `evaluation` (evaluations, early
stopping, the best weights), `tensors` (random state, norms),
`step_rows` (the per-step rows), `recorder` (rows into the record through `landscape.store`),
`checkpoint` (a run's state for resuming), `schedules` (learning rates), `precision` (the
step's arithmetic), `tuning` (the memory format, a choice of speed), `tasks` (the data and
loss a run trains on). Nothing here knows the runs of a record (`landscape.sweep` does).
"""
