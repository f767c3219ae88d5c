"""Prompt caching as OpenAI bills it: the leading tokens of a request that an earlier request to
the same model already sent are cached, in `cache_increment`-token blocks, from `cache_min_tokens`
up. Tokens, not messages: a conversation re-sent as one growing transcript is cached too."""

from __future__ import annotations

import collections
import hashlib
from typing import Any

from personasim.testing.chat_replies import content_text


class PromptCache:
    """Remembers, per model, the chained hash of every whole block of each prompt's tokens (the
    server's tokens: words, each message's role with it); the oldest are forgotten past `max_blocks`."""

    def __init__(self, min_tokens: int = 1024, increment: int = 128, max_blocks: int = 200_000) -> None:
        self.min_tokens = min_tokens
        self.increment = increment
        self.max_blocks = max_blocks
        self._seen: collections.OrderedDict[tuple[str, bytes], None] = collections.OrderedDict()

    def use(self, model: str, messages: list[dict[str, Any]]) -> int:
        """The cached tokens of this request, then its blocks remembered for later requests. Not
        thread-safe: the caller holds its lock."""
        words = [f"{m.get('role')}:{word}" for m in messages for word in content_text(m.get("content")).split()]
        digest, hit, keys = b"", 0, []
        for start in range(0, len(words) - self.increment + 1, self.increment):
            block = "\x1f".join(words[start:start + self.increment]).encode()
            digest = hashlib.blake2b(digest + block, digest_size=16).digest()
            key = (model, digest)
            if key in self._seen and hit == start:
                hit = start + self.increment
            keys.append(key)
        for key in keys:
            self._seen[key] = None
            self._seen.move_to_end(key)
        while len(self._seen) > self.max_blocks:
            self._seen.popitem(last=False)
        return hit if hit >= self.min_tokens else 0
