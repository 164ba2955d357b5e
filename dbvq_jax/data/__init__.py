"""Data sources and batching pipelines."""
