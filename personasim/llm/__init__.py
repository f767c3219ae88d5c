"""The LLM layer: role clients over OpenAI-compatible endpoints or the offline backend.

Import from the submodules (`personasim.llm.factory`, `.client`, `.usage`); this package
imports nothing eagerly so the distractor and the offline backend can share rule code.
"""
