"""`python -m personasim.testing`: the OpenAI-compatible latency server, for benchmarks."""

import argparse
import threading

from personasim.testing.fake_openai import FakeOpenAIServer, default_reply

FILLER = ("first", "check", "the", "logs", "then", "measure", "again", "under", "load", "and", "compare", "results")


def padded(text: str, words: int) -> str:
    """`text` and filler words up to `words` words: the same answer to the same question."""
    start = sum(map(ord, text)) % len(FILLER)
    extra = [FILLER[(start + i) % len(FILLER)] for i in range(max(0, words - len(text.split())))]
    return " ".join([text, *extra]) + "."


def main(argv: list[str] | None = None) -> None:
    """Serve until killed; the first line printed is the base URL (for benchmarks)."""
    parser = argparse.ArgumentParser(description="OpenAI-compatible latency server on 127.0.0.1")
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--jitter", type=float, default=0.0)
    parser.add_argument("--rpm", type=float, default=None, help="requests per minute, answered 429 beyond")
    parser.add_argument("--batch-delay", type=float, default=0.0, help="seconds a batch takes to run its lines")
    parser.add_argument("--cache-min-tokens", type=int, default=1024, help="the shortest prefix served from cache")
    parser.add_argument("--answer-words", type=int, default=0,
                        help="pad each assistant answer to this many words (a real answer's length, for caching)")
    args = parser.parse_args(argv)
    server = FakeOpenAIServer(latency=args.latency, jitter=args.jitter, requests_per_minute=args.rpm,
                              batch_delay=args.batch_delay, cache_min_tokens=args.cache_min_tokens)
    server.record_requests = False
    if args.answer_words:
        server.respond_with("respond", lambda body: padded(default_reply("respond", body, 0), args.answer_words))
    server.start()
    print(server.base_url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()


main()
