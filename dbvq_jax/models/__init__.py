"""Flax Linen networks only: no losses, no training code."""
