"""A word-level tokenizer built from a corpus: `tokenizers`' WordLevel model wrapped in a
transformers fast tokenizer, so it saves, loads and works with `AutoTokenizer`.

Words are split on whitespace (corpora such as PTB come tokenized); every sentence is
wrapped as `<s> … </s>`; words outside the vocabulary become `<unk>`.

Also what a text model needs around its tokenizer: loading the one saved beside it and
checking it fits the config, checking sentences, and padding token rows into a batch.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable
from typing import Any

from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

from vaehub.models import checkpoints
from vaehub.models.checkpoints import CheckpointError

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


# --- loading and checking a model's tokenizer and its input ---------------------------------

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")
# Kept in tokenizer_config.json: the vocabulary's fingerprint when the model was saved, so
# that a tokenizer.json whose words were reordered or swapped (it loads, and prints garbage)
# is caught on load.
VOCAB_FINGERPRINT_KEY = "vaehub_vocab_sha256"


def vocab_fingerprint(tokenizer: PreTrainedTokenizerBase) -> str:
    """The sha256 of the tokenizer's (token, id) pairs."""
    import hashlib

    pairs = sorted(tokenizer.get_vocab().items(), key=lambda pair: pair[1])
    return hashlib.sha256(json.dumps(pairs, ensure_ascii=False).encode("utf-8")).hexdigest()


def mark_vocab(tokenizer: PreTrainedTokenizerBase) -> None:
    """Record the vocabulary's fingerprint where `save_pretrained` writes it."""
    tokenizer.init_kwargs[VOCAB_FINGERPRINT_KEY] = vocab_fingerprint(tokenizer)


def load_tokenizer(
    name_or_path: str | os.PathLike, hub_kwargs: dict[str, Any]
) -> PreTrainedTokenizerBase | None:
    """The tokenizer saved beside a model, or `None` when there is none."""
    from transformers import AutoTokenizer

    try:
        paths = [
            checkpoints.resolve_file(name_or_path, name, hub_kwargs) for name in TOKENIZER_FILES
        ]
    except checkpoints.CheckpointError:
        return None
    for path in paths:
        _check_tokenizer_file(path, name_or_path)
    # Both files now lie in one local folder (the model folder, or the cached snapshot of
    # the revision): load from there, with no further requests to the Hub.
    try:
        tokenizer = AutoTokenizer.from_pretrained(os.path.dirname(paths[0]))
    except Exception as error:  # noqa: BLE001 - tokenizers raises its own kinds for bad files
        raise CheckpointError(
            f"the tokenizer of {name_or_path} ({os.path.dirname(paths[0])}) cannot be read: "
            f"{type(error).__name__}: {str(error).strip()[:300]}. Save the model with its "
            "tokenizer again, or download it again."
        ) from error
    saved = tokenizer.init_kwargs.get(VOCAB_FINGERPRINT_KEY)
    if saved is not None and saved != vocab_fingerprint(tokenizer):
        raise CheckpointError(
            f"the tokenizer of {name_or_path} ({paths[0]}) is not the one the model was saved "
            "with: its words map to other ids than they did (they were reordered or "
            "replaced), so every sentence would decode to other words. Save the model with its "
            "own tokenizer again, or download it again."
        )
    return tokenizer


def _check_tokenizer_file(path: str, name_or_path: str | os.PathLike) -> None:
    """A tokenizer file must be JSON, and in a local folder a file of that folder: a link
    to elsewhere (`tokenizer.json -> /etc/passwd`) is refused, naming it."""
    if os.path.isdir(name_or_path) and os.path.islink(path):
        folder = os.path.realpath(name_or_path)
        if not os.path.realpath(path).startswith(folder + os.sep):
            raise CheckpointError(
                f"{path} is a link to {os.path.realpath(path)}, outside {name_or_path}: a "
                "model's tokenizer is read only from its own folder. Copy the file there."
            )
    try:
        with open(path, encoding="utf-8") as handle:
            json.load(handle)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(
            f"{path} is not a readable tokenizer file ({type(error).__name__}: {error}): it "
            "is truncated or corrupt. Save the model with its tokenizer again, or download "
            "it again."
        ) from error


def check_tokenizer_fits(
    tokenizer: PreTrainedTokenizerBase, config: Any, name_or_path: Any
) -> None:
    """Refuse a tokenizer that gives ids the model has no embedding for, or whose special
    tokens are not the config's."""
    if len(tokenizer) > config.vocab_size:
        raise CheckpointError(
            f"the tokenizer of {name_or_path} has {len(tokenizer)} tokens, but its config.json "
            f"gives vocab_size={config.vocab_size}: ids from {config.vocab_size} on have no "
            "embedding. The tokenizer and the weights come from different models; save the "
            "model with its own tokenizer again."
        )
    for role in ("pad", "bos", "eos", "unk"):
        token_id = getattr(tokenizer, f"{role}_token_id", None)
        expected = getattr(config, f"{role}_token_id", None)
        if token_id is not None and expected is not None and token_id != expected:
            raise CheckpointError(
                f"the tokenizer of {name_or_path} gives {role}_token_id={token_id}, its "
                f"config.json {role}_token_id={expected}: they come from different models."
            )


def check_texts(texts: Any) -> list[str]:
    """A sentence or a list of sentences, checked: non-empty strings only."""
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, (list, tuple)):
        raise ValueError(f"expected a sentence or a list of sentences, got {type(texts).__name__}.")
    if not texts:
        raise ValueError("expected at least one sentence, got an empty list.")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise ValueError(f"sentence #{i} is a {type(text).__name__}, not a string.")
        if not text.strip():
            raise ValueError(f"sentence #{i} is empty; a sentence needs at least one word.")
    return list(texts)


