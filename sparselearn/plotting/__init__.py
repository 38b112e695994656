"""Figures drawn from the results store (never training): learnability curves, scaling plots
with fitted exponents and theory overlays, phase diagrams; one style (style.py)."""

from sparselearn.plotting.auto import KINDS, plot_results
from sparselearn.plotting.curves import error_vs_m, error_vs_steps, first_step, grid_frame, learnability
from sparselearn.plotting.phase import phase_diagram, success_table
from sparselearn.plotting.scaling import PowerLaw, fit_exponent, overlay, scaling_plot

__all__ = ["KINDS", "PowerLaw", "error_vs_m", "error_vs_steps", "first_step", "fit_exponent", "grid_frame",
           "learnability", "overlay", "phase_diagram", "plot_results", "scaling_plot", "success_table"]
