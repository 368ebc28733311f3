"""The text VAE written as a plain PyTorch user writes it: the yardstick of this host.

The same sizes, dropout and loss as `vaehub.TextVAEModel` with a Gaussian prior (He et al.
2019's architecture: an LSTM encoder whose last state gives (μ, log σ²), an LSTM decoder fed
[embedding; z] at every step with its state from z, a bias-free output layer), built from
`nn.LSTM`, `nn.Linear` and `F.cross_entropy` with nothing fused, chunked or cached.

A CPU's speed moves from host to host and from hour to hour, so an absolute epoch time
says little about the code; the same batches through this model on the same cores, in
the same run, say how vaehub's step compares with what PyTorch gives anyone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

if TYPE_CHECKING:  # a launch benchmark runs this module with torch alone
    from vaehub import TextVAEConfig


class PlainTextVAE(nn.Module):
    def __init__(self, config: TextVAEConfig) -> None:
        super().__init__()
        e, h, d, z = (
            config.embedding_size,
            config.encoder_hidden_size,
            config.decoder_hidden_size,
            config.latent_size,
        )
        self.encoder_embedding = nn.Embedding(config.vocab_size, e)
        self.encoder = nn.LSTM(e, h, batch_first=True)
        self.to_posterior = nn.Linear(h, 2 * z, bias=False)
        self.decoder_embedding = nn.Embedding(config.vocab_size, e)
        self.embedding_dropout = nn.Dropout(config.decoder_embedding_dropout)
        self.latent_to_state = nn.Linear(z, d, bias=False)
        self.decoder = nn.LSTM(e + z, d, batch_first=True)
        self.output_dropout = nn.Dropout(config.decoder_output_dropout)
        self.lm_head = nn.Linear(d, config.vocab_size, bias=False)

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """The batch's mean negative ELBO, nats per sentence.

        Args:
            input_ids: `(batch, seq_len)` right-padded, `<s>` … `</s>`.
            attention_mask: `(batch, seq_len)`.
        """
        lengths = attention_mask.sum(-1)
        outputs, _ = self.encoder(self.encoder_embedding(input_ids))
        last = outputs[torch.arange(len(input_ids)), lengths - 1]
        mean, log_var = self.to_posterior(last).chunk(2, dim=-1)
        z = mean + torch.randn_like(mean) * (0.5 * log_var).exp()
        kl = 0.5 * (mean.pow(2) + log_var.exp() - log_var - 1).sum(-1)

        inputs = self.embedding_dropout(self.decoder_embedding(input_ids[:, :-1]))
        steps = inputs.shape[1]
        inputs = torch.cat([inputs, z.unsqueeze(1).expand(-1, steps, -1).to(inputs.dtype)], -1)
        c = self.latent_to_state(z).unsqueeze(0)
        hidden, _ = self.decoder(inputs, (torch.tanh(c), c))
        logits = self.lm_head(self.output_dropout(hidden))
        targets = input_ids[:, 1:].masked_fill(attention_mask[:, 1:] == 0, -100)
        nll = F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1), reduction="sum"
        )
        return (nll + kl.sum()) / len(input_ids)
