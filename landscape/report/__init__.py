"""From records to the numbers the figures and the comparison table show (no plotting, no files).

Runs are loaded from one or more records (clashing run ids are qualified by record), grouped by model,
and turned into plain data with the pure functions of `analyses`, one module per figure family:

- `runs`: loading, grouping by model, notes on runs that did not finish, record differences;
- `course`: the course's loss envelope (min/max of the training-batch loss across a model's
  learning rates) and trajectory quantities (gradient change ‖g_{t+1} − g_t‖ and trajectory β
  ‖g_{t+1} − g_t‖ / ‖w_{t+1} − w_t‖, of one tapped parameter or of all parameters);
- `paper`: the paper's probe bands per probed step (loss band, gradient predictiveness,
  effective β);
- `layers`: the paper's internal covariate shift (Definition 2.1) per measured layer, and the
  distribution across channels of a layer's per-channel activation mean and standard deviation;
- `curvature`: the Hessian probe's λ_max and trace per run (with 2/η and the paper's β), and
  its spectral densities per model;
- `surfaces`: the loss surfaces of `landscape surface`, one group per name, a panel per run;
- `compare`: a model-vs-model comparison table (e.g. vgg vs vgg_bn) and `summary.txt`'s text;
- `factors`: runs split into cells by the levels of their axes (records with `--vary`, or
  records combined), the verdict within each cell and where it changes between levels;
- `ablation`: one row per run group (accuracy, time, losses, landscape metrics with intervals
  over seeds) as dicts, a numpy structured array or a pandas DataFrame;
- `study`: the sections of `landscape report`'s page (what was run, verdicts, accuracy, runs,
  warnings) as tables of cells that carry their numbers.

Diverged and incomplete runs take part up to their last recorded step; every per-run curve
carries the run's status and divergence step so that a figure can mark them.

Everything public is importable from `landscape.report` itself.
"""

from landscape.report.compare import (
    COMPARISON_METRICS,
    HESSIAN_METRICS,
    ICS_METRICS,
    bn_pairs,
    compare,
    comparisons,
    metric_description,
    norm_pairs,
    summary_text,
    verdict,
)
from landscape.report.verdicts import MetricVerdict, PairVerdict
from landscape.report.ablation import (LANDSCAPE_METRICS, RUN_VALUES, ablation_array,
                                       ablation_frame, ablation_rows, ablation_text)
from landscape.report.factors import (FactorCell, LevelVerdict, axes_text, factor_cells,
                                      factor_summary, level_verdicts, report_axes,
                                      verdict_changes)
from landscape.report.course import (
    ALL_PARAMETERS,
    ModelSeries,
    RunCurve,
    gradient_change_envelopes,
    loss_envelopes,
    run_curve,
    run_gradient_change,
    run_trajectory_beta,
    trajectory_beta_envelopes,
    trajectory_source,
)
from landscape.report.curvature import (ModelDensity, RunHessian, hessian_data,
                                        hessian_densities, run_hessian)
from landscape.report.layers import (
    ActivationBands,
    ActivationHistogram,
    RunICS,
    activation_bands,
    activation_data,
    activation_histograms,
    ics_data,
    ics_layers,
    run_ics,
)
from landscape.report.paper import (EtaRange, PaperData, direction_text, eta_range, paper_data,
                                    probe_bands, probe_direction)
from landscape.report.surfaces import SurfacePanel, surface_groups
from landscape.report.study import Cell, Facts, Notes, Section, StudyReport, Table, study_report
from landscape.report.runs import (
    LoadedRun,
    full_batch,
    group_by_model,
    load_runs,
    record_differences,
    run_notes,
)

__all__ = [
    "MetricVerdict", "PairVerdict", "verdict", "direction_text", "probe_direction",
    "ALL_PARAMETERS", "COMPARISON_METRICS", "ICS_METRICS", "ActivationBands",
    "ActivationHistogram", "EtaRange",
    "LoadedRun", "ModelSeries", "PaperData", "RunCurve", "RunICS", "activation_bands",
    "activation_data", "activation_histograms", "bn_pairs", "norm_pairs", "compare",
    "comparisons",
    "eta_range", "full_batch",
    "gradient_change_envelopes", "group_by_model", "ics_data", "ics_layers", "load_runs",
    "loss_envelopes", "metric_description", "paper_data", "probe_bands", "record_differences",
    "run_curve", "run_gradient_change", "run_ics", "run_notes", "run_trajectory_beta",
    "summary_text", "trajectory_beta_envelopes", "trajectory_source",
    "HESSIAN_METRICS", "ModelDensity", "RunHessian", "hessian_data", "hessian_densities",
    "run_hessian",
    "SurfacePanel", "surface_groups",
    "LANDSCAPE_METRICS", "RUN_VALUES", "ablation_array", "ablation_frame", "ablation_rows",
    "ablation_text", "FactorCell", "LevelVerdict", "axes_text", "factor_cells", "factor_summary",
    "level_verdicts", "report_axes", "verdict_changes",
    "Cell", "Facts", "Notes", "Section", "StudyReport", "Table", "study_report",
]
