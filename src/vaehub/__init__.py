"""vaehub: variational autoencoders whose latent code is used, the Hugging Face way.

Importing vaehub registers its configs, models and tokenizers with transformers'
Auto classes, so `AutoModel.from_pretrained(folder)` loads a vaehub model, and gives every
Hub request a timeout (`vaehub.network`).
"""

import warnings

from transformers import AutoConfig, AutoModel

from vaehub import network
from vaehub.allocator import keep_freed_memory
from vaehub.checkpoints import CheckpointError
from vaehub.configuration_vae import (
    DeltaVAEConfig,
    LinearVAEConfig,
    PixelCNNConfig,
    TextLMConfig,
    TextVAEConfig,
    VAEConfig,
)
from vaehub.modeling_delta_vae import DeltaVAEModel, DeltaVAEOutput, save_image_grid
from vaehub.modeling_linear_vae import LinearVAEModel, LinearVAEOutput
from vaehub.modeling_pixelcnn import PixelCNNModel, PixelCNNOutput
from vaehub.modeling_text_lm import TextLMModel, TextLMOutput
from vaehub.modeling_text_vae import TextVAEModel, TextVAEOutput
from vaehub.modeling_utils import interpolate_latents
from vaehub.priors import (
    AR1Prior,
    DiagonalGaussian,
    StandardNormalPrior,
    VarianceConstrainedPrior,
    kl_divergence,
    prior_from_config,
)
from vaehub.tokenization import build_tokenizer

__version__ = "0.1.0"

AutoConfig.register(TextVAEConfig.model_type, TextVAEConfig, exist_ok=True)
AutoModel.register(TextVAEConfig, TextVAEModel, exist_ok=True)
AutoConfig.register(DeltaVAEConfig.model_type, DeltaVAEConfig, exist_ok=True)
AutoModel.register(DeltaVAEConfig, DeltaVAEModel, exist_ok=True)
AutoConfig.register(TextLMConfig.model_type, TextLMConfig, exist_ok=True)
AutoModel.register(TextLMConfig, TextLMModel, exist_ok=True)
AutoConfig.register(PixelCNNConfig.model_type, PixelCNNConfig, exist_ok=True)
AutoModel.register(PixelCNNConfig, PixelCNNModel, exist_ok=True)
AutoConfig.register(LinearVAEConfig.model_type, LinearVAEConfig, exist_ok=True)
AutoModel.register(LinearVAEConfig, LinearVAEModel, exist_ok=True)

try:
    network.set_hub_timeout()
except ValueError as error:  # a bad environment variable must not make the import fail
    seconds = network.set_hub_timeout(network.DEFAULT_TIMEOUT)
    warnings.warn(f"{error} Using {seconds:g} s.", stacklevel=2)

__all__ = [
    "AR1Prior",
    "CheckpointError",
    "DeltaVAEConfig",
    "DeltaVAEModel",
    "DeltaVAEOutput",
    "DiagonalGaussian",
    "LinearVAEConfig",
    "LinearVAEModel",
    "LinearVAEOutput",
    "PixelCNNConfig",
    "PixelCNNModel",
    "PixelCNNOutput",
    "StandardNormalPrior",
    "TextLMConfig",
    "TextLMModel",
    "TextLMOutput",
    "TextVAEConfig",
    "TextVAEModel",
    "TextVAEOutput",
    "VAEConfig",
    "VarianceConstrainedPrior",
    "build_tokenizer",
    "interpolate_latents",
    "keep_freed_memory",
    "kl_divergence",
    "prior_from_config",
    "save_image_grid",
]
