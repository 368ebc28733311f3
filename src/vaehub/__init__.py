"""vaehub: variational autoencoders whose latent code is used, the Hugging Face way.

Importing vaehub registers its configs, models and tokenizers with transformers'
Auto classes, so `AutoModel.from_pretrained(folder)` loads a vaehub model, and gives every
Hub request a timeout (`vaehub.utils.network`).
"""

import warnings

from vaehub import _compat
from vaehub.hub.transfer import HubError
from vaehub.latent.priors import (
    AR1Prior,
    DiagonalGaussian,
    StandardNormalPrior,
    VarianceConstrainedPrior,
    kl_divergence,
    prior_from_config,
)
from vaehub.models.auto import register_auto_classes
from vaehub.models.checkpoints import CheckpointError
from vaehub.models.configuration_utils import VAEConfig
from vaehub.models.image.configuration_delta_vae import DeltaVAEConfig
from vaehub.models.image.configuration_pixelcnn import PixelCNNConfig
from vaehub.models.image.modeling_delta_vae import DeltaVAEModel, DeltaVAEOutput, save_image_grid
from vaehub.models.image.modeling_pixelcnn import PixelCNNModel, PixelCNNOutput
from vaehub.models.linear.configuration_linear_vae import LinearVAEConfig
from vaehub.models.linear.modeling_linear_vae import LinearVAEModel, LinearVAEOutput
from vaehub.models.modeling_utils import interpolate_latents
from vaehub.models.text.configuration_text_lm import TextLMConfig
from vaehub.models.text.configuration_text_vae import TextVAEConfig
from vaehub.models.text.modeling_text_lm import TextLMModel, TextLMOutput
from vaehub.models.text.modeling_text_vae import TextVAEModel, TextVAEOutput
from vaehub.models.text.tokenization import build_tokenizer
from vaehub.utils import network
from vaehub.utils.allocator import keep_freed_memory
from vaehub.utils.version import __version__ as __version__

register_auto_classes()
_compat.install()

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
    "HubError",
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
