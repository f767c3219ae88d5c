"""The persona stages before the pairs: personas sampled from a bank, queries assigned from a pool,
a system prompt formulated for each persona (PersonaGym's first three stages)."""

from personasim.personas.assign import Assignment, assign, assignment_summary
from personasim.personas.bank import PersonaBank, load_bank
from personasim.personas.persona import Persona, persona_id_for
from personasim.personas.queries import PoolQuery, QueryPool, load_pool
from personasim.personas.sampler import PersonaSampler

__all__ = ["Assignment", "Persona", "PersonaBank", "PersonaSampler", "PoolQuery", "QueryPool", "assign",
           "assignment_summary", "load_bank", "load_pool", "persona_id_for"]
