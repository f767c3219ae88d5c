"""What both distractors share: activation per turn, and the reference API's entry points."""

from __future__ import annotations

import random
import threading

from personasim.config import DistractorConfig
from personasim.llm.ledger import Ledger, UsageLog
from personasim.records import NoiseResult, NoisyVersion


class BaseDistractor:
    """Decides per user turn whether noise is injected; subclasses decide how (`_apply`)."""

    def __init__(self, config: DistractorConfig, seed: int = 0, usage: UsageLog | None = None) -> None:
        self.config = config
        self.activation_probability = config.activation_probability
        self.usage = usage
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()

    def noise(self, text: str, rng: random.Random, ledger: Ledger, force: bool = False) -> NoiseResult:
        """Noise for one user turn, applied with `activation_probability` (always when `force`)."""
        activated = force or rng.random() < self.activation_probability
        if not activated or not text.strip():
            return NoiseResult.clean(text)
        return self._apply(text, rng, ledger)

    def _apply(self, text: str, rng: random.Random, ledger: Ledger) -> NoiseResult:
        raise NotImplementedError

    # -- the reference API ----------------------------------------------------------------------
    def _draw(self) -> random.Random:
        """A stream for callers without one: reproducible under the seed, safe across threads."""
        with self._rng_lock:
            return random.Random(self._rng.getrandbits(64))

    def inject_noise(self, text: str, rng: random.Random | None = None, force: bool = False) -> NoiseResult:
        return self.noise(text, rng or self._draw(), Ledger(log=self.usage), force)

    def generate_noisy_versions(self, text: str, num_versions: int = 3,
                                rng: random.Random | None = None) -> list[NoisyVersion]:
        """Several forced noisy variants of one text (distinct where the strategies allow)."""
        rng = rng or self._draw()
        versions: list[NoisyVersion] = []
        for _ in range(num_versions):
            result = self.inject_noise(text, rng, force=True)
            if result.was_noised and all(v.text != result.noisy_text for v in versions):
                versions.append(NoisyVersion.from_result(result))
        return versions
