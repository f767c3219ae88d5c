"""System prompts for a run's personas, one formulator call each, side by side on the run's pair
pool, each stored the moment it is written. The budget and a stop hold here as for pairs."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future

from personasim.dataset.persona_store import PersonaStore
from personasim.engine.engine import Engine
from personasim.errors import LLMCallError
from personasim.llm.ledger import Ledger
from personasim.personas.persona import Formulated, FormulationFailure, Persona
from personasim.prompts import Prompts
from personasim.roles.formulator import Formulator


def formulator(engine: Engine) -> Formulator:
    config = engine.config
    template = config.formulation.template
    return Formulator(engine.clients.formulator(), config.formulation, config.spec.contracts,
                      Prompts({"formulate_system_prompt": template} if template else None))


def formulate(engine: Engine, personas: Sequence[Persona], store: PersonaStore | None = None) -> list[Formulated]:
    """Each persona with its system prompt (or the failure of its call), in order; personas not
    started (the run was stopped, or its budget spent) are left out."""
    writer = formulator(engine)

    def one(persona: Persona) -> Formulated | None:
        if not engine.may_start():
            return None
        ledger = Ledger(log=engine.spent, persona_id=persona.persona_id)
        try:
            done = writer.formulate(persona, ledger)
        except LLMCallError as exc:
            return None if engine.aborted else FormulationFailure(persona, str(exc), exc.permanent, tuple(ledger.usage))
        if store is not None:
            store.save(done)
        return done

    futures: list[Future[Formulated | None]] = [engine.pool.submit(one, p) for p in personas]
    try:
        results = [f.result() for f in futures]
    except BaseException:
        for future in futures:
            future.cancel()
        raise
    return [r for r in results if r is not None]
