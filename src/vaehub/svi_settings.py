"""Kim et al.'s SVI settings (text), apart from the SVI code that uses them.

`svi` refines posteriors with them by default. The CLI, a release's verification slice and
a model card name a refinement's step size only when it differs from `DEFAULT_LEARNING_RATE`;
they read it here rather than from `svi`, so the Hub and card layer depends on no model part.
"""

DEFAULT_STEPS = 20
DEFAULT_LEARNING_RATE = 1.0
DEFAULT_MOMENTUM = 0.5
DEFAULT_MAX_GRAD_NORM = 5.0
