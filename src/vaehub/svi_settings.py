"""Kim et al.'s SVI settings (text), where the layers that load no torch can name them.

`svi` refines posteriors with them by default; the CLI, a release's verification slice and
a model card name a refinement's step size only when it differs from `DEFAULT_LEARNING_RATE`,
and they must not import torch to know it.
"""

DEFAULT_STEPS = 20
DEFAULT_LEARNING_RATE = 1.0
DEFAULT_MOMENTUM = 0.5
DEFAULT_MAX_GRAD_NORM = 5.0
