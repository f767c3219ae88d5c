"""Partitioned Parquet datasets: schemas, rows, committed waves, statistics."""

from personasim.dataset.stats import compute_statistics
from personasim.dataset.store import Dataset

__all__ = ["Dataset", "compute_statistics"]
