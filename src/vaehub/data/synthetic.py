"""He et al. (2019)'s synthetic corpus, generated in process from a seed: sentences of an LSTM
language model conditioned on a 2-d latent drawn from a mixture of four Gaussians, so that
the true posterior can be drawn and compared."""

from __future__ import annotations

import torch
from datasets import Dataset
from torch import nn

MIXTURE_CENTRES = ((2.0, 2.0), (2.0, -2.0), (-2.0, 2.0), (-2.0, -2.0))


def synthetic_corpus(
    num_sentences: int = 20000,
    seed: int = 0,
    vocab_size: int = 1000,
    sentence_length: int = 10,
    embedding_size: int = 100,
    hidden_size: int = 100,
    batch_size: int = 2000,
) -> Dataset:
    """Sentences from a fixed random LSTM language model conditioned on a 2-d latent.

    The generator of He et al. 2019: z from a mixture of 4 unit-variance Gaussians
    centred at (±2, ±2); the first token uniform at random; an LSTM with 100-d embeddings
    and 100 hidden units, its initial state c₀ = W z, h₀ = tanh(c₀), z concatenated to
    every input and added to the logits through a fixed linear map with weights
    U(−5, 5); every other weight U(−1, 1), drawn once from `seed` and fixed; each token
    sampled from the softmax. Tokens are written as their ids, as in the authors' files.

    Returns:
        a `Dataset` with `text` (space-separated token ids), `z` (the 2-d latent that
        generated the sentence) and `component` (its mixture component, 0–3).
    """
    for name, value in (
        ("num_sentences", num_sentences),
        ("vocab_size", vocab_size),
        ("sentence_length", sentence_length),
        ("embedding_size", embedding_size),
        ("hidden_size", hidden_size),
        ("batch_size", batch_size),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    generator = torch.Generator().manual_seed(seed)
    embedding = nn.Embedding(vocab_size, embedding_size)
    lstm = nn.LSTMCell(embedding_size + 2, hidden_size)
    latent_to_state = nn.Linear(2, hidden_size, bias=False)
    hidden_to_logits = nn.Linear(hidden_size, vocab_size, bias=False)
    with torch.no_grad():
        for module in (embedding, lstm, latent_to_state, hidden_to_logits):
            for parameter in module.parameters():
                parameter.uniform_(-1.0, 1.0, generator=generator)
    latent_to_logits = torch.empty(2, vocab_size).uniform_(-5.0, 5.0, generator=generator)
    centres = torch.tensor(MIXTURE_CENTRES)

    texts, latents, components = [], [], []
    with torch.no_grad():
        for start in range(0, num_sentences, batch_size):
            n = min(batch_size, num_sentences - start)
            component = torch.randint(0, 4, (n,), generator=generator)
            z = centres[component] + torch.randn(n, 2, generator=generator)
            token = torch.randint(0, vocab_size, (n,), generator=generator)
            c = latent_to_state(z)
            state = (torch.tanh(c), c)
            tokens = [token]
            for _ in range(sentence_length - 1):
                state = lstm(torch.cat([embedding(token), z], dim=-1), state)
                logits = hidden_to_logits(state[0]) + z @ latent_to_logits
                token = torch.multinomial(torch.softmax(logits, -1), 1, generator=generator)[:, 0]
                tokens.append(token)
            rows = torch.stack(tokens, dim=1).tolist()
            texts += [" ".join(map(str, row)) for row in rows]
            latents += z.tolist()
            components += component.tolist()
    return Dataset.from_dict({"text": texts, "z": latents, "component": components})
