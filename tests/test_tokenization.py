"""The word-level tokenizer: vocabulary, special tokens, unknown words, saving."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from vaehub import build_tokenizer

CORPUS = ["the cat sat on the mat", "the dog sat", "a dog ate the cat", "the end"]


def test_special_tokens_take_ids_0_to_3_and_wrap_every_sentence():
    tokenizer = build_tokenizer(CORPUS)
    assert [tokenizer.convert_tokens_to_ids(t) for t in ("<pad>", "<unk>", "<s>", "</s>")] == [
        0,
        1,
        2,
        3,
    ]
    ids = tokenizer("the cat")["input_ids"]
    assert ids[0] == 2 and ids[-1] == 3 and len(ids) == 4
    assert tokenizer.pad_token_id == 0 and tokenizer.unk_token_id == 1


def test_unknown_words_become_unk():
    tokenizer = build_tokenizer(CORPUS)
    ids = tokenizer("the zebra sat")["input_ids"]
    assert ids[2] == tokenizer.unk_token_id
    assert tokenizer.decode(ids[1:-1]) == "the <unk> sat"


def test_vocab_size_keeps_the_most_frequent_words():
    tokenizer = build_tokenizer(CORPUS, vocab_size=6)
    assert len(tokenizer) == 6
    vocab = tokenizer.get_vocab()
    # "the" (5 times) and "cat"/"sat"/"dog" (twice) beat the words seen once.
    assert "the" in vocab and "mat" not in vocab and "end" not in vocab


def test_min_frequency_drops_rare_words():
    vocab = build_tokenizer(CORPUS, min_frequency=2).get_vocab()
    assert set(vocab) == {"<pad>", "<unk>", "<s>", "</s>", "the", "cat", "sat", "dog"}


def test_save_and_load_round_trip_through_auto_tokenizer(tmp_path):
    tokenizer = build_tokenizer(CORPUS)
    tokenizer.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    for sentence in CORPUS + ["an unseen sentence", "the the the"]:
        assert loaded(sentence)["input_ids"] == tokenizer(sentence)["input_ids"]
    assert loaded.get_vocab() == tokenizer.get_vocab()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"corpus": []}, "corpus is empty"),
        ({"corpus": "the cat sat"}, "not one string"),
        ({"corpus": ["fine", 3]}, "sentence #1 is a int"),
        ({"corpus": CORPUS, "vocab_size": 4}, "vocab_size must be an integer > 4"),
        ({"corpus": CORPUS, "min_frequency": 0}, "min_frequency must be an integer >= 1"),
    ],
)
def test_bad_arguments_are_refused_clearly(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_tokenizer(**kwargs)


def test_a_corpus_that_spells_unk_keeps_the_special_id():
    # PTB writes rare words as "<unk>": that word is the special token, not a new entry.
    tokenizer = build_tokenizer(["a <unk> b <unk>", "c <unk> a"])
    vocab = tokenizer.get_vocab()
    assert sorted(vocab.values()) == list(range(len(vocab)))
    assert vocab["<unk>"] == 1 and len(tokenizer) == 7
    assert tokenizer("a <unk> zebra")["input_ids"] == [2, vocab["a"], 1, 1, 3]
