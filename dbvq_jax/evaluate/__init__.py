"""Evaluation: metrics, figures and result tables."""
