"""Datasets written in other tools' formats: PersonaGym's training-data files."""
