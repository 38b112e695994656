"""Figures drawn from the results store (never training): learnability curves, scaling plots
with fitted exponents and theory overlays, phase diagrams; one style (style.py)."""

from sparselearn.plotting.auto import KINDS, plot_results
from sparselearn.plotting.curves import error_vs_m, error_vs_steps, first_step, grid_frame, learnability
from sparselearn.plotting.phase import phase_diagram, success_table
from sparselearn.plotting.scaling import (VERDICTS, PowerLaw, Verdict, exponent_verdict, fit_exponent,
                                          local_slopes, overlay, scaling_plot, upper_half_fit)

__all__ = ["KINDS", "VERDICTS", "PowerLaw", "Verdict", "error_vs_m", "error_vs_steps", "exponent_verdict",
           "first_step", "fit_exponent", "grid_frame", "learnability", "local_slopes", "overlay", "phase_diagram",
           "plot_results", "scaling_plot", "success_table", "upper_half_fit"]
