"""What both distractors share: activation per turn and the per-model fallback random stream."""

from __future__ import annotations

import random
import threading

from personasim.config import DistractorConfig
from personasim.distractor.results import NoiseResult, NoisyVersion


class BaseDistractor:
    """Decides per user turn whether noise is injected; subclasses decide how."""

    def __init__(self, config: DistractorConfig, seed: int = 0) -> None:
        self.config = config
        self.activation_probability = config.activation_probability
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()

    def _fallback_rng(self) -> random.Random:
        # Callers without a per-pair stream still get reproducible, thread-safe draws.
        with self._rng_lock:
            return random.Random(self._rng.getrandbits(64))

    def inject_noise(self, text: str, rng: random.Random | None = None, force: bool = False) -> NoiseResult:
        """Noise for one user turn, applied with `activation_probability` (always when `force`)."""
        rng = rng or self._fallback_rng()
        activated = force or rng.random() < self.activation_probability
        if not activated or not text.strip():
            return NoiseResult.clean(text, activated=False)
        result = self._apply(text, rng)
        result.metadata.setdefault("activated", True)
        return result

    def generate_noisy_versions(self, text: str, num_versions: int = 3,
                                rng: random.Random | None = None) -> list[NoisyVersion]:
        """Several forced noisy variants of one text (distinct where the strategies allow)."""
        rng = rng or self._fallback_rng()
        versions: list[NoisyVersion] = []
        for _ in range(num_versions):
            result = self.inject_noise(text, rng, force=True)
            if result.was_noised and all(v.text != result.noisy_text for v in versions):
                versions.append(NoisyVersion.from_result(result))
        return versions

    def _apply(self, text: str, rng: random.Random) -> NoiseResult:
        raise NotImplementedError
