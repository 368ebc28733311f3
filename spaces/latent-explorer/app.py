"""The vaehub latent explorer as a Hugging Face Space (runs unchanged: `python app.py`).

Models: the Hub ids or folders in the `VAEHUB_MODELS` variable (comma-separated; a Space
sets it under Settings → Variables), else the released vaehub checkpoints. Address and
port: `GRADIO_SERVER_NAME` and `GRADIO_SERVER_PORT`, which a Space sets (0.0.0.0:7860);
run elsewhere, it listens on 127.0.0.1 only.
"""

from __future__ import annotations

import os

from vaehub.app.models import ModelStore
from vaehub.app.ui import build_app, launch

# The released checkpoints of the vaehub organisation: the PTB flagship, the reconstruction
# flagship for reconstructions and paths, the high-rate model, the collapsed ELBO model (the
# Compare tab's pair with the flagship), the language model, and a δ-VAE.
DEFAULT_MODELS = (
    "vaehub/ptb-vae",
    "vaehub/ptb-vae-recon",
    "vaehub/ptb-vae-high-rate",
    "vaehub/ptb-vae-elbo",
    "vaehub/ptb-vae-aggressive",
    "vaehub/ptb-lstm-lm",
    "vaehub/mnist-delta-vae-ar1",
)


def models() -> list[str]:
    """The models to serve, from `VAEHUB_MODELS` or the defaults."""
    given = os.environ.get("VAEHUB_MODELS", "")
    chosen = [name.strip() for name in given.split(",") if name.strip()]
    return chosen or list(DEFAULT_MODELS)


if __name__ == "__main__":
    demo = build_app(ModelStore(models()))
    launch(
        demo,
        host=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
    )
