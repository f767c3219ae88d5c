"""The Arrow schema of every table, declared once so every file of a dataset agrees.

Partition columns (run_date, split) live in the directory names, not in the files, so
pyarrow, pandas, DuckDB and Polars all read them back from the hive layout alike.
"""

from __future__ import annotations

import pyarrow as pa

TIMESTAMP = pa.timestamp("us", tz="UTC")
STRINGS = pa.list_(pa.string())
FEATURES = pa.map_(pa.string(), pa.string())
CHAT_MESSAGE = pa.struct([("role", pa.string()), ("content", pa.string())])

MESSAGE = pa.struct([
    ("role", pa.string()),
    ("content", pa.string()),
    ("timestamp", TIMESTAMP),
    ("turn", pa.int32()),
    ("clean_text", pa.string()),
    ("was_noised", pa.bool_()),
    ("finish_reason", pa.string()),
    ("truncated", pa.bool_()),
])
VIOLATION = pa.struct([("role", pa.string()), ("reason", pa.string()), ("detail", pa.string()),
                       ("repaired", pa.bool_())])
VERDICT = pa.struct([("attempt", pa.int32()), ("stage", pa.string()), ("outcome", pa.string()),
                     ("reason", pa.string())])

INTERACTIONS = pa.schema([
    ("interaction_id", pa.string()),
    ("persona_id", pa.string()),
    ("query_id", pa.string()),
    ("persona_features", FEATURES),
    ("original_query", pa.string()),
    ("initial_query", pa.string()),
    ("style_transferred", pa.bool_()),
    ("messages", pa.list_(MESSAGE)),
    ("num_turns", pa.int32()),
    ("target_turns", pa.int32()),
    ("termination_reason", pa.string()),  # satisfied, target_reached, max_turns, contract_failure, context_limit
    ("assistant_model", pa.string()),
    ("assistant_provider", pa.string()),
    ("user_turns", pa.int32()),
    ("noised_turns", pa.int32()),
    ("noise_layers", STRINGS),
    ("noise_strategies", STRINGS),
    ("noise_fallbacks", pa.int32()),  # turns drawn for noise that came back clean (reasons in messages)
    ("style_transfer_fallback", pa.string()),  # why the original query was kept after a broken rewrite
    ("truncated_turns", pa.int32()),
    ("violations", pa.list_(VIOLATION)),  # every reply that broke its role's contract, repaired or not
    ("llm_calls", pa.int32()),
    ("input_tokens", pa.int64()),
    ("output_tokens", pa.int64()),
    ("config_fingerprint", pa.string()),
    ("seed", pa.int64()),
    ("run_id", pa.string()),
    ("created_at", TIMESTAMP),
    ("metadata_json", pa.string()),
    ("system_prompt", pa.string()),  # what the assistant was told about the persona (null: the generic prompt)
])

MESSAGES = pa.schema([
    ("interaction_id", pa.string()),
    ("persona_id", pa.string()),
    ("position", pa.int32()),
    ("turn", pa.int32()),
    ("role", pa.string()),
    ("content", pa.string()),
    ("clean_text", pa.string()),
    ("was_noised", pa.bool_()),
    ("noise_layer", pa.string()),
    ("noise_strategies", STRINGS),
    ("noise_fallback", pa.string()),  # a user turn drawn for noise that came back clean: why
    ("model", pa.string()),
    ("provider", pa.string()),
    ("finish_reason", pa.string()),
    ("truncated", pa.bool_()),
    ("timestamp", TIMESTAMP),
    ("run_id", pa.string()),
    ("verdicts", pa.list_(VERDICT)),  # a user turn: what the gate said of each of its drafts
])

NOISY_VERSION = pa.struct([("text", pa.string()), ("layer", pa.string()), ("applied_strategies", STRINGS)])

TRAINING = pa.schema([
    ("sample_id", pa.string()),
    ("interaction_id", pa.string()),
    ("persona_id", pa.string()),
    ("persona_features", FEATURES),
    ("original_query", pa.string()),
    ("initial_query", pa.string()),
    ("prompt_trajectory", STRINGS),
    ("full_conversation", pa.list_(CHAT_MESSAGE)),
    ("num_turns", pa.int32()),
    ("noisy_initial_queries", pa.list_(NOISY_VERSION)),
    ("metadata_json", pa.string()),
    ("run_id", pa.string()),
])

TOKEN_USAGE = pa.schema([
    ("interaction_id", pa.string()),
    ("module", pa.string()),
    ("operation", pa.string()),
    ("model", pa.string()),
    ("provider", pa.string()),
    ("input_tokens", pa.int64()),
    ("output_tokens", pa.int64()),
    ("latency_s", pa.float64()),
    ("created_at", TIMESTAMP),
    ("run_id", pa.string()),
    ("outcome", pa.string()),  # what the call paid for: "interaction", "failure" or "persona" (its system prompt)
    ("persona_id", pa.string()),  # the persona a formulator call wrote for
    ("cached_tokens", pa.int64()),  # of input_tokens, served from the provider's prompt cache
    ("batch", pa.bool_()),  # answered through a batch API
])

FAILURES = pa.schema([
    ("interaction_id", pa.string()),
    ("persona_id", pa.string()),
    ("query_id", pa.string()),
    ("original_query", pa.string()),
    ("source", pa.string()),
    ("stage", pa.string()),
    ("reason", pa.string()),
    ("attempts", pa.int32()),
    ("permanent", pa.bool_()),
    ("run_id", pa.string()),
    ("failed_at", TIMESTAMP),
])

PERSONAS = pa.schema([
    ("persona_id", pa.string()),
    ("persona_index", pa.int64()),  # its place in the sample (or the persona file): personas keep it across runs
    ("persona_features", FEATURES),
    ("system_prompt", pa.string()),
    ("prompt_source", pa.string()),  # input, formulated, fallback (the features rendered by rule), none
    ("prompt_fallback", pa.string()),  # why the fallback was used
    ("violations", pa.list_(VIOLATION)),
    ("llm_calls", pa.int32()),
    ("input_tokens", pa.int64()),
    ("output_tokens", pa.int64()),
    ("formulator_model", pa.string()),
    ("metadata_json", pa.string()),
    ("run_id", pa.string()),
    ("created_at", TIMESTAMP),
])

ASSIGNMENTS = pa.schema([
    ("persona_id", pa.string()),
    ("query_id", pa.string()),
    ("position", pa.int32()),  # the persona's first, second, ... query
    ("original_query", pa.string()),
    ("target_turns", pa.int32()),
    ("reused", pa.bool_()),  # another persona has this query too (the pool ran out; on_exhausted: reuse)
    ("matched", pa.bool_()),  # the query's metadata matched the persona (null: no matching asked)
    ("source", pa.string()),
    ("metadata_json", pa.string()),
    ("run_id", pa.string()),
    ("created_at", TIMESTAMP),
])

SCORES = pa.schema([  # one row per interaction, axis and judge model
    ("interaction_id", pa.string()),
    ("axis", pa.string()),
    ("score", pa.int32()),  # 1-5
    ("reason", pa.string()),
    ("judge_model", pa.string()),
    ("run_id", pa.string()),
    ("created_at", TIMESTAMP),
])

# Tables written in committed waves. `failures/` is not one of them: it is the current view of
# `failure_log/` (pairs not stored since), rewritten whole when a run publishes its statistics.
TABLES: dict[str, pa.Schema] = {
    "interactions": INTERACTIONS,
    "messages": MESSAGES,
    "training": TRAINING,
    "token_usage": TOKEN_USAGE,
    "failure_log": FAILURES,
    "personas": PERSONAS,
    "assignments": ASSIGNMENTS,
    "scores": SCORES,
}
