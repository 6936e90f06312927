"""One line per figure of `all_figures` on how to read it: the captions of `landscape report`'s
page, the same sentences as docs/figures.md's "The report page" (a test holds them together)."""

from __future__ import annotations

# By figure stem; "paper_lr<lr>" and "surface_<name>" by their prefix.
CAPTIONS: dict[str, str] = {
    "loss_landscape": "Training-batch loss of each model, shaded between its lowest and highest "
                      "value over its runs (lrs, seeds: the legend says which) at every step "
                      "(the course's loss landscape): a narrow band trains alike at every lr "
                      "and seed, a lower band trains faster.",
    "loss_envelope_width": "max − min of each model's training-batch loss across its "
                           "runs (lrs and seeds together) at every step (the course's band "
                           "width, log axis): lower means the model trains alike whatever the "
                           "lr. The verdict takes the width per seed, across its lrs, and its "
                           "median over steps.",
    "paper_lr": "The paper's probe at one learning rate: at each probed step, the band of the "
                "loss (left) and of the gradient change (middle) over the step lengths along the "
                "probed line, and the effective β (right), each the median over seeds (β's "
                "min and max over seeds dotted); narrower and lower is smoother. The verdict at "
                "this lr compares medians over all probed steps.",
    "gradient_change": "‖gₜ₊₁ − gₜ‖ between consecutive training steps, shaded from min to "
                       "max over each model's runs (the course's quantity: it mixes batches, it "
                       "is not the paper's predictiveness); lower is smoother. The verdict "
                       "compares medians over all steps, per seed, not this band.",
    "trajectory_beta": "‖gₜ₊₁ − gₜ‖ / ‖wₜ₊₁ − wₜ‖ along the training trajectory, the max over "
                       "each model's runs at every step (the course's β, not the paper's); "
                       "lower is smoother. The verdict compares medians over all steps, per "
                       "seed: a max drawn higher with BN can sit beside a verdict 'smoother "
                       "with BN'.",
    "training_curves": "Every run's training-batch loss per step (left) and its training and "
                       "held-out accuracy per evaluation (middle, right); an x marks a diverged "
                       "run, an open circle an incomplete one.",
    "ics": "Internal covariate shift (the paper's Definition 2.1) per measured layer: ‖G − G′‖ "
           "(top) and cos∠(G, G′) (bottom); no shift is 0 and 1, and the paper finds networks "
           "with BN shift as much or more.",
    "activations": "Distribution across channels of a layer's per-channel mean (upper) and "
                   "standard deviation (lower): shaded 10th to 90th percentile, thick line the "
                   "median, dashed single channels; with BN both stay narrow and steady.",
    "activation_histograms": "Histograms of a layer's output values at a few recorded steps, "
                             "stacked with an offset per step, one panel per model showing one "
                             "run (its lr and seed in the panel's title; the paper's Figures 2 "
                             "and 7): a distribution that moves from step to step is what BN is "
                             "said to prevent.",
    "hessian": "λ_max of the batch Hessian per run (solid) with the paper's β (dotted) and 2/η "
               "(dashed), and its trace (right): λ_max above 2/η means a plain gradient step "
               "overshoots along the sharpest direction.",
    "hessian_density": "Spectral density of the batch Hessian at a few recorded steps "
                       "(stochastic Lanczos quadrature, log scale): compare how far the "
                       "outliers sit from the bulk near 0, and how much negative mass there is.",
    "surface": "A loss surface around a run's kept weights (Li et al. 2018), every run that has "
               "it side by side: equal colors are equal losses in every panel, and a wider, "
               "flatter basin is the smoother landscape.",
    "weight_histograms": "Histograms of the last weights each run kept, one panel per conv or "
                         "linear layer, with Σ|w| and ‖w‖ in the legend: an L1 penalty piles "
                         "weights at 0, an L2 penalty shrinks them all.",
}
# A figure this table does not know yet still gets a line (tests/test_html_report.py checks
# that every figure docs/figures.md lists has its own).
_UNKNOWN = "See docs/figures.md for what this figure shows and how to read it."


# Added to the caption of a figure drawn once per level ("ics_batch_size=16").
PER_LEVEL = ("One figure per level of the record's axes (or of the settings combined records "
             "differ in): its title and file name say which.")


def figure_caption(name: str) -> str:
    """The caption of the figure `all_figures` names `name` ("paper_lr0.1", "surface_plane",
    "ics_batch_size=16", ...)."""
    if name in CAPTIONS:
        return CAPTIONS[name]
    for prefix in ("paper_lr", "surface"):
        if name.startswith(prefix):
            return CAPTIONS[prefix]
    # The longest stem first: "hessian_density_batch_size=16" is not a "hessian" figure.
    for stem in sorted(CAPTIONS, key=len, reverse=True):
        if name.startswith(stem + "_") and "=" in name[len(stem) + 1:]:
            return f"{CAPTIONS[stem]} {PER_LEVEL}"
    return _UNKNOWN
