"""vaehub: variational autoencoders whose latent code is used, the Hugging Face way.

`import vaehub` is light: each public name below is imported the first time it is used, so
the `vaehub` command starts without loading torch. vaehub's model types are registered with
transformers' `AutoConfig` and `AutoModel` as soon as those are in use (`_autoregister`), so
`AutoModel.from_pretrained(folder)` loads a vaehub model. Every Hub request gets a timeout
(`vaehub.utils.network`).
"""

import warnings
from typing import TYPE_CHECKING

from vaehub import _autoregister, _compat
from vaehub.utils import network
from vaehub.utils.lazy import lazy_exports
from vaehub.utils.version import __version__ as __version__

# public name -> the module that defines it
_EXPORTS = {
    "AR1Prior": "vaehub.latent.priors",
    "DiagonalGaussian": "vaehub.latent.priors",
    "StandardNormalPrior": "vaehub.latent.priors",
    "VarianceConstrainedPrior": "vaehub.latent.priors",
    "kl_divergence": "vaehub.latent.priors",
    "prior_from_config": "vaehub.latent.priors",
    "HubError": "vaehub.hub.transfer",
    "CheckpointError": "vaehub.models.checkpoints",
    "VAEConfig": "vaehub.models.configuration_utils",
    "DeltaVAEConfig": "vaehub.models.image.configuration_delta_vae",
    "PixelCNNConfig": "vaehub.models.image.configuration_pixelcnn",
    "DeltaVAEModel": "vaehub.models.image.modeling_delta_vae",
    "DeltaVAEOutput": "vaehub.models.image.modeling_delta_vae",
    "save_image_grid": "vaehub.models.image.modeling_delta_vae",
    "PixelCNNModel": "vaehub.models.image.modeling_pixelcnn",
    "PixelCNNOutput": "vaehub.models.image.modeling_pixelcnn",
    "LinearVAEConfig": "vaehub.models.linear.configuration_linear_vae",
    "LinearVAEModel": "vaehub.models.linear.modeling_linear_vae",
    "LinearVAEOutput": "vaehub.models.linear.modeling_linear_vae",
    "interpolate_latents": "vaehub.models.modeling_utils",
    "TextLMConfig": "vaehub.models.text.configuration_text_lm",
    "TextVAEConfig": "vaehub.models.text.configuration_text_vae",
    "TextLMModel": "vaehub.models.text.modeling_text_lm",
    "TextLMOutput": "vaehub.models.text.modeling_text_lm",
    "TextVAEModel": "vaehub.models.text.modeling_text_vae",
    "TextVAEOutput": "vaehub.models.text.modeling_text_vae",
    "build_tokenizer": "vaehub.models.text.tokenization",
    "VAETrainer": "vaehub.training.trainer",
    "VAETrainingArguments": "vaehub.training.arguments",
    "keep_freed_memory": "vaehub.utils.allocator",
}

if TYPE_CHECKING:  # the same names, for type checkers and the API reference's reader
    from vaehub.hub.transfer import HubError
    from vaehub.latent.priors import (
        AR1Prior,
        DiagonalGaussian,
        StandardNormalPrior,
        VarianceConstrainedPrior,
        kl_divergence,
        prior_from_config,
    )
    from vaehub.models.checkpoints import CheckpointError
    from vaehub.models.configuration_utils import VAEConfig
    from vaehub.models.image.configuration_delta_vae import DeltaVAEConfig
    from vaehub.models.image.configuration_pixelcnn import PixelCNNConfig
    from vaehub.models.image.modeling_delta_vae import (
        DeltaVAEModel,
        DeltaVAEOutput,
        save_image_grid,
    )
    from vaehub.models.image.modeling_pixelcnn import PixelCNNModel, PixelCNNOutput
    from vaehub.models.linear.configuration_linear_vae import LinearVAEConfig
    from vaehub.models.linear.modeling_linear_vae import LinearVAEModel, LinearVAEOutput
    from vaehub.models.modeling_utils import interpolate_latents
    from vaehub.models.text.configuration_text_lm import TextLMConfig
    from vaehub.models.text.configuration_text_vae import TextVAEConfig
    from vaehub.models.text.modeling_text_lm import TextLMModel, TextLMOutput
    from vaehub.models.text.modeling_text_vae import TextVAEModel, TextVAEOutput
    from vaehub.models.text.tokenization import build_tokenizer
    from vaehub.training.arguments import VAETrainingArguments
    from vaehub.training.trainer import VAETrainer
    from vaehub.utils.allocator import keep_freed_memory


# Imported when first used: importing one module of the package loads nothing else.
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())


_compat.install()
_autoregister.install()

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
    "VAETrainer",
    "VAETrainingArguments",
    "VAEConfig",
    "VarianceConstrainedPrior",
    "build_tokenizer",
    "interpolate_latents",
    "keep_freed_memory",
    "kl_divergence",
    "prior_from_config",
    "save_image_grid",
]
