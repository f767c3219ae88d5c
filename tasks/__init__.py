"""Prefect tasks wrapping the personasim library, one job each."""
