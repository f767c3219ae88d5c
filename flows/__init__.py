"""Prefect flows for personasim."""
