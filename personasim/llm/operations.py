"""Names of the LLM operations, shared by the roles, the usage records and the test server."""

REWRITE_QUERY = "rewrite_query"
RESPOND = "respond"
FOLLOW_UP = "follow_up"
EXTRACT_INTENT = "extract_intent"
SEMANTIC_REWRITE = "semantic_rewrite"
PARAPHRASE = "paraphrase"
FORMULATE = "formulate_system_prompt"
JUDGE_TURN = "judge_turn"
JUDGE_REWRITE = "judge_rewrite"
JUDGE_SCORE = "judge_score"

# What the user simulator answers instead of a follow-up when the persona is satisfied.
SATISFIED = "[SATISFIED]"
