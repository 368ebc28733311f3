"""Corpora, tokenization, batching and the synthetic generator."""

from __future__ import annotations

import pytest
import torch

from vaehub import build_tokenizer
from vaehub.data.batching import length_bucketed_batches
from vaehub.data.synthetic import synthetic_corpus
from vaehub.data.text import TextCollator, load_ptb, load_text_corpus, tokenize_corpus


def test_ptb_loads_complete_with_its_published_counts(ptb_dir):
    ptb = load_ptb(ptb_dir)
    assert {split: len(ptb[split]) for split in ptb} == {
        "train": 42068,
        "validation": 3370,
        "test": 3761,
    }
    words = {w for line in ptb["train"]["text"] for w in line.split()}
    assert len(words) == 9999  # Mikolov's vocabulary: 10k with the end of sentence


def test_text_corpus_drops_blank_lines_and_names_missing_files(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("one sentence\n\n   \nanother one here\n", encoding="utf-8")
    corpus = load_text_corpus(str(path))
    assert corpus["train"]["text"] == ["one sentence", "another one here"]
    with pytest.raises(FileNotFoundError, match="nowhere.txt"):
        load_text_corpus({"train": str(tmp_path / "nowhere.txt")})


def test_tokenize_corpus_adds_ids_lengths_and_warns_on_truncation(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("a b c\n" + " ".join(["w"] * 30) + "\n", encoding="utf-8")
    corpus = load_text_corpus(str(path))
    tokenizer = build_tokenizer(corpus["train"]["text"])
    with pytest.warns(UserWarning, match="1 of 2 sentences exceed max_length=10"):
        data = tokenize_corpus(corpus, tokenizer, max_length=10)
    rows = data["train"]["input_ids"]
    assert data["train"]["length"] == [5, 10]
    assert rows[0][0] == 2 and rows[0][-1] == 3 and rows[1][-1] == 3


def test_collator_pads_to_the_longest_row():
    batch = TextCollator(pad_token_id=0)([{"input_ids": [2, 5, 3]}, {"input_ids": [2, 7, 8, 9, 3]}])
    assert batch["input_ids"].tolist() == [[2, 5, 3, 0, 0], [2, 7, 8, 9, 3]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]
    with pytest.raises(ValueError, match="empty batch"):
        TextCollator()([])


def test_length_buckets_group_similar_lengths_and_cover_everything():
    lengths = [5, 30, 6, 29, 7, 31, 5, 28]
    batches = length_bucketed_batches(lengths, batch_size=4)
    assert sorted(i for batch in batches for i in batch) == list(range(8))
    spans = [max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches]
    assert spans == [2, 3]
    shuffled = length_bucketed_batches(lengths, batch_size=2, shuffle=True, seed=1)
    assert sorted(map(sorted, shuffled)) == sorted(map(sorted, length_bucketed_batches(lengths, 2)))
    assert shuffled == length_bucketed_batches(lengths, batch_size=2, shuffle=True, seed=1)


def test_synthetic_corpus_is_deterministic_and_shaped_as_he_et_al():
    first = synthetic_corpus(300, seed=7)
    assert first["text"] == synthetic_corpus(300, seed=7)["text"]
    assert first["text"] != synthetic_corpus(300, seed=8)["text"]
    tokens = [row.split() for row in first["text"]]
    assert all(len(row) == 10 for row in tokens)
    assert all(0 <= int(t) < 1000 for row in tokens for t in row)
    z = torch.tensor(first["z"])
    centres = torch.tensor([[2.0, 2.0], [2.0, -2.0], [-2.0, 2.0], [-2.0, -2.0]])
    # Each z lies nearer its own mixture centre than 5 unit-variance standard deviations.
    offsets = z - centres[torch.tensor(first["component"])]
    assert offsets.norm(dim=-1).max() < 5
    assert set(first["component"]) == {0, 1, 2, 3}


def test_synthetic_sentences_depend_on_their_latent():
    data = synthetic_corpus(4000, seed=0)
    # Token frequencies differ between mixture components: z shapes the words.
    counts = torch.zeros(4, 1000)
    for text, component in zip(data["text"], data["component"], strict=True):
        for token in text.split()[1:]:
            counts[component, int(token)] += 1
    frequencies = counts / counts.sum(1, keepdim=True)
    total_variation = 0.5 * (frequencies[0] - frequencies[3]).abs().sum()
    assert total_variation > 0.3


def test_synthetic_corpus_rejects_bad_sizes():
    with pytest.raises(ValueError, match="num_sentences must be a positive integer"):
        synthetic_corpus(0)


def test_the_trainer_batches_sentences_of_one_length_by_default(ptb_slice, tmp_path):
    """`VAETrainer`'s default training order (`length_buckets`): every sentence once per
    epoch, in full batches of one length except where a length's count does not divide,
    a new order each epoch; padding falls from the random sampler's share to almost none."""
    from vaehub import TextVAEConfig, TextVAEModel
    from vaehub.training.arguments import VAETrainingArguments
    from vaehub.training.trainer import VAETrainer

    train = ptb_slice["data"]["train"]
    model = TextVAEModel(TextVAEConfig(vocab_size=len(ptb_slice["tokenizer"]), embedding_size=8,
                                       encoder_hidden_size=8, decoder_hidden_size=8,
                                       latent_size=2, max_sequence_length=64))  # fmt: skip

    def epoch_batches(strategy: str, epoch: int = 0) -> list[dict]:
        args = VAETrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=32,
                                    report_to="none", use_cpu=True, seed=3,
                                    train_sampling_strategy=strategy)  # fmt: skip
        trainer = VAETrainer(model=model, args=args, train_dataset=train,
                             data_collator=TextCollator())  # fmt: skip
        loader = trainer.get_train_dataloader()
        loader.set_epoch(epoch)
        return list(loader)

    def padding(batches: list[dict]) -> float:
        masks = [b["attention_mask"] for b in batches]
        return 1 - sum(m.sum().item() for m in masks) / sum(m.numel() for m in masks)

    batches = epoch_batches("length_buckets")
    assert sum(len(b["input_ids"]) for b in batches) == len(train)
    assert all(len(b["input_ids"]) == 32 for b in batches[:-1])
    mixed = sum(len(set(b["attention_mask"].sum(-1).tolist())) > 1 for b in batches)
    assert mixed <= len(set(train["length"]))
    assert padding(batches) < 0.03 and padding(epoch_batches("random")) > 10 * padding(batches)
    again, later = epoch_batches("length_buckets"), epoch_batches("length_buckets", epoch=1)
    pairs = zip(batches, again, strict=True)
    assert all(torch.equal(a["input_ids"], b["input_ids"]) for a, b in pairs)
    assert not torch.equal(batches[0]["input_ids"], later[0]["input_ids"])
