"""Sharing vaehub models: model cards carrying measured results (`cards`), verification
slices that anyone holding the weights can measure again (`verification`), and push/pull
(`transfer`).

The results files a model folder holds are the models layer's (`vaehub.models.results`);
their names are re-exported here, where they were found before the package had layers.
"""

from vaehub.utils.lazy import lazy_exports

_EXPORTS = {
    "ABOUT_FILE": "vaehub.hub.cards",
    "BASELINE_METRICS": "vaehub.hub.cards",
    "CARD_METRICS": "vaehub.hub.cards",
    "CONFIG_NOT_IN_CARD": "vaehub.hub.cards",
    "LIBRARY_NAME": "vaehub.hub.cards",
    "LICENSE": "vaehub.hub.cards",
    "NO_LATENT": "vaehub.hub.cards",
    "SAMPLES_FILE": "vaehub.hub.cards",
    "TAGS": "vaehub.hub.cards",
    "TASKS": "vaehub.hub.cards",
    "VERIFICATION_TEMPLATE": "vaehub.hub.cards",
    "attach_baseline": "vaehub.hub.cards",
    "card_training": "vaehub.hub.cards",
    "checkpoint_table": "vaehub.hub.cards",
    "render_model_card": "vaehub.hub.cards",
    "reported_split": "vaehub.hub.cards",
    "FAMILY_COLUMNS": "vaehub.hub.family",
    "family_row": "vaehub.hub.family",
    "family_rows": "vaehub.hub.family",
    "family_table": "vaehub.hub.family",
    "plot_family": "vaehub.hub.family",
    "HubError": "vaehub.hub.transfer",
    "check_download": "vaehub.hub.transfer",
    "pull": "vaehub.hub.transfer",
    "push_folder": "vaehub.hub.transfer",
    "EVAL_PREFIX": "vaehub.models.results",
    "GENERATION_FILE": "vaehub.models.results",
    "TRAINING_FILE": "vaehub.models.results",
    "MissingResultsError": "vaehub.models.results",
    "check_finite_metrics": "vaehub.models.results",
    "check_results_target": "vaehub.models.results",
    "evaluation_dataset": "vaehub.models.results",
    "read_generation_report": "vaehub.models.results",
    "read_results": "vaehub.models.results",
    "training_summary": "vaehub.models.results",
    "write_generation_report": "vaehub.models.results",
    "write_results": "vaehub.models.results",
    "write_training_summary": "vaehub.models.results",
    "COUNTS": "vaehub.utils.formatting",
    "fixed": "vaehub.utils.formatting",
}

__all__ = [
    "ABOUT_FILE", "BASELINE_METRICS", "CARD_METRICS", "CONFIG_NOT_IN_CARD", "COUNTS",
    "EVAL_PREFIX", "FAMILY_COLUMNS", "GENERATION_FILE", "LIBRARY_NAME", "LICENSE", "NO_LATENT",
    "SAMPLES_FILE", "TAGS", "TASKS", "TRAINING_FILE", "VERIFICATION_TEMPLATE", "HubError",
    "MissingResultsError", "attach_baseline", "card_training", "check_download",
    "check_finite_metrics", "check_results_target", "checkpoint_table", "evaluation_dataset",
    "family_row", "family_rows", "family_table", "fixed", "plot_family", "pull", "push_folder",
    "read_generation_report", "read_results", "render_model_card", "reported_split",
    "training_summary", "write_generation_report", "write_results", "write_training_summary",
]


# Imported when first used: importing one module of the package loads nothing else.
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
