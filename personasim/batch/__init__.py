"""Batch runs: pairs in rounds through providers' batch APIs, replayed from a journal."""
