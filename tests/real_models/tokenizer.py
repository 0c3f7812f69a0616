"""A byte-level BPE tokenizer trained with `tokenizers`, pre-tokenized as Qwen2 and Llama-3 are.

The split pattern is theirs: punctuation keeps the newlines that follow it (".\\n", ".\\n\\n"),
runs of newlines are one piece ("\\n\\n"), a word keeps its leading space (" the"). So the
merges that break text-level search on real models are here too: a step that ends ".\\n\\n" is
one token, and re-encoding "step." + "\\n" gives other ids than the model wrote.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

# Qwen2's pre-tokenizer pattern (Llama-3's differs only in grouping digits by three).
SPLIT_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
                 r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")


def train_bpe(corpus: Iterable[str], vocab_size: int, special_tokens: Sequence[str],
              added_tokens: Sequence[str] = ()) -> Tokenizer:
    """A byte-level BPE over `corpus`; `special_tokens` first (ids 0..), then the 256 byte
    symbols and the merges; `added_tokens` (e.g. "<think>") are whole tokens that are not
    special (they stay in decoded text)."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(SPLIT_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=list(special_tokens), show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), min_frequency=2)
    tokenizer.train_from_iterator(corpus, trainer=trainer)
    if added_tokens:
        tokenizer.add_tokens(list(added_tokens))
    return tokenizer


def with_bos(tokenizer: Tokenizer, bos: str) -> None:
    """Encoding with special tokens prepends `bos`, as Llama-3's tokenizer does."""
    bos_id = tokenizer.token_to_id(bos)
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos}:0 $A:0", pair=f"{bos}:0 $A:0 {bos}:1 $B:1",
        special_tokens=[(bos, bos_id)])


def as_transformers(tokenizer: Tokenizer, chat_template: str, *, eos: str,
                    bos: str | None = None, pad: str | None = None,
                    max_length: int = 1024) -> PreTrainedTokenizerFast:
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token=eos, bos_token=bos,
                                   pad_token=pad, model_max_length=max_length,
                                   clean_up_tokenization_spaces=False)
    fast.chat_template = chat_template
    return fast
