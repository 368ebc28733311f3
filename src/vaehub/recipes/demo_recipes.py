"""What `vaehub demo` shows, by name: the released flagship it opens with, and the objectives
it can compare on the synthetic corpus; apart from the demo itself, so that the command line
lists them without loading any model code."""

from __future__ import annotations

import os

# The released PTB text VAE the demo opens with: the best likelihood with a used latent.
FLAGSHIP = os.path.join("model_cards", "ptb-vae")

# What each recipe changes in `VAETrainingArguments`; every recipe gets the same budget.
RECIPES: dict[str, dict] = {
    "elbo": dict(objective="elbo"),
    # λ = 0.75 nats in each of the 2 dimensions: the KL term is flat below 1.5 nats, so
    # nothing rewards the encoder for collapsing until the code carries that much, at an
    # ELBO step's cost (aggressive training pays many ELBO steps an update for its inner loop).
    "free_bits": dict(objective="free_bits", free_bits=0.75),
    "aggressive": dict(objective="aggressive"),
    "anneal": dict(objective="anneal"),
    "sa_vae": dict(objective="sa_vae"),
}


DEFAULT_RECIPES = ("elbo", "free_bits")
