"""A word-level tokenizer built from a corpus: `tokenizers`' WordLevel model wrapped in a
transformers fast tokenizer, so it saves, loads and works with `AutoTokenizer`.

Words are split on whitespace (corpora such as PTB come tokenized); every sentence is
wrapped as `<s> … </s>`; words outside the vocabulary become `<unk>`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<s>", "</s>"
SPECIAL_TOKENS = (PAD, UNK, BOS, EOS)  # ids 0, 1, 2, 3, as `TextVAEConfig` expects


def build_tokenizer(
    corpus: Iterable[str], vocab_size: int | None = None, min_frequency: int = 1
) -> PreTrainedTokenizerFast:
    """Learn a word-level vocabulary from sentences.

    Args:
        corpus: sentences, one string each, words separated by whitespace.
        vocab_size: largest vocabulary, the 4 special tokens included; the most frequent
            words are kept. `None` keeps every word seen `min_frequency` times.
        min_frequency: words seen fewer times become `<unk>`.
    Returns:
        a fast tokenizer with `<pad> <unk> <s> </s>` as ids 0–3.
    """
    if vocab_size is not None and (
        isinstance(vocab_size, bool)
        or not isinstance(vocab_size, int)
        or vocab_size <= len(SPECIAL_TOKENS)
    ):
        raise ValueError(
            f"vocab_size must be an integer > {len(SPECIAL_TOKENS)} (the special "
            f"tokens), got {vocab_size!r}."
        )
    if isinstance(min_frequency, bool) or not isinstance(min_frequency, int) or min_frequency < 1:
        raise ValueError(f"min_frequency must be an integer >= 1, got {min_frequency!r}.")
    if isinstance(corpus, str):
        raise ValueError("corpus must be an iterable of sentences, not one string.")

    counts: Counter[str] = Counter()
    sentences = 0
    for sentence in corpus:
        if not isinstance(sentence, str):
            raise ValueError(
                f"corpus sentence #{sentences} is a {type(sentence).__name__}, not a string."
            )
        counts.update(sentence.split())
        sentences += 1
    if sentences == 0:
        raise ValueError("corpus is empty: a vocabulary needs at least one sentence.")
    # A corpus may already spell a special token (PTB writes "<unk>"): it keeps its id.
    for token in SPECIAL_TOKENS:
        counts.pop(token, None)
    # Most frequent first; ties broken alphabetically, so the vocabulary is reproducible.
    words = sorted(
        (w for w, c in counts.items() if c >= min_frequency), key=lambda w: (-counts[w], w)
    )
    if vocab_size is not None:
        words = words[: vocab_size - len(SPECIAL_TOKENS)]
    vocab = {token: i for i, token in enumerate([*SPECIAL_TOKENS, *words])}

    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A {EOS}", special_tokens=[(BOS, vocab[BOS]), (EOS, vocab[EOS])]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token=PAD, unk_token=UNK, bos_token=BOS, eos_token=EOS
    )
    return fast


def truncate_rows(rows: list[list[int]], max_length: int) -> tuple[list[list[int]], list[int]]:
    """Cut token-id rows longer than `max_length`, keeping each one's final `</s>`.

    Returns:
        the rows, and the indices of those that were cut.
    """
    if max_length < 2:
        raise ValueError(f"max_length must be >= 2 (<s> and </s>), got {max_length}.")
    truncated = [i for i, row in enumerate(rows) if len(row) > max_length]
    for i in truncated:
        rows[i] = rows[i][: max_length - 1] + rows[i][-1:]
    return rows, truncated
