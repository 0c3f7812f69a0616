"""What the engine reports beside vLLM's own series.

`deliberate_prefix_cache_ceiling_tokens`: vLLM counts prefix-cache queries (prompt tokens) and
hits per request, but caches only whole KV blocks and always recomputes a prompt's last token,
so even a prompt seen before cannot hit more than its whole blocks before that token. This
counter adds up that ceiling over the requests vLLM counts (those that read the cache: not
prompt-logprob requests), so ceiling / queries is the best hit rate the block size allows.
"""

from __future__ import annotations

from prometheus_client import Counter

PREFIX_CACHE_CEILING = Counter(
    "deliberate_prefix_cache_ceiling_tokens",
    "Prompt tokens the prefix cache could serve at most (whole blocks before the last token), "
    "over the requests counted by vllm:prefix_cache_queries")


def cacheable_prefix(prompt_tokens: int, block_size: int) -> int:
    """The most prompt tokens vLLM can take from its prefix cache for one sequence."""
    return max(prompt_tokens - 1, 0) // block_size * block_size
