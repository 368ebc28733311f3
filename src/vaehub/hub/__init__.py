"""Sharing vaehub models: model cards carrying measured results (`cards`), verification
slices that anyone holding the weights can measure again (`verification`), and push/pull
(`transfer`).

The results files a model folder holds are the models layer's (`vaehub.models.results`);
their names are re-exported here, where they were found before the package had layers.
"""

from vaehub.hub.cards import (
    ABOUT_FILE,
    BASELINE_METRICS,
    CARD_METRICS,
    CONFIG_NOT_IN_CARD,
    LIBRARY_NAME,
    LICENSE,
    NO_LATENT,
    SAMPLES_FILE,
    TAGS,
    TASKS,
    VERIFICATION_TEMPLATE,
    card_training,
    checkpoint_table,
    render_model_card,
    reported_split,
)
from vaehub.hub.transfer import HubError, check_download, pull, push_folder
from vaehub.models.results import (
    EVAL_PREFIX,
    GENERATION_FILE,
    TRAINING_FILE,
    MissingResultsError,
    check_finite_metrics,
    check_results_target,
    evaluation_dataset,
    read_generation_report,
    read_results,
    training_summary,
    write_generation_report,
    write_results,
    write_training_summary,
)
from vaehub.utils.formatting import COUNTS, fixed

__all__ = [
    "ABOUT_FILE", "BASELINE_METRICS", "CARD_METRICS", "CONFIG_NOT_IN_CARD", "COUNTS",
    "EVAL_PREFIX", "GENERATION_FILE", "LIBRARY_NAME", "LICENSE", "NO_LATENT", "SAMPLES_FILE",
    "TAGS", "TASKS", "TRAINING_FILE", "VERIFICATION_TEMPLATE", "HubError", "MissingResultsError",
    "card_training", "check_download", "check_finite_metrics", "check_results_target",
    "checkpoint_table", "evaluation_dataset", "fixed", "pull", "push_folder",
    "read_generation_report", "read_results", "render_model_card", "reported_split",
    "training_summary", "write_generation_report", "write_results", "write_training_summary",
]
