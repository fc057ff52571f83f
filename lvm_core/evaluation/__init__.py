"""Judging models: metrics, the 5CAT gate battery, bootstrap intervals, paired evaluation, gate reports, data diagnostics, run comparison and seed statistics."""
