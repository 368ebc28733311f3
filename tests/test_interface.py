"""Every registered model type against the interface the metrics and objectives use."""

from __future__ import annotations

import inspect

import pytest
from torch import nn

from vaehub.models.auto import MODEL_TYPES
from vaehub.models.interface import LatentVariableModel, ScoredModel


def protocol_methods(protocol: type) -> set[str]:
    return {
        name
        for klass in protocol.__mro__
        if klass not in (object,) and getattr(klass, "_is_protocol", False)
        for name, value in vars(klass).items()
        if inspect.isfunction(value) and not name.startswith("_")
    }


@pytest.mark.parametrize("name", sorted(MODEL_TYPES))
def test_each_model_type_has_the_interface_its_kind_needs(name):
    declared = MODEL_TYPES[name]
    protocol = LatentVariableModel if declared.has_latent else ScoredModel
    missing = sorted(m for m in protocol_methods(protocol) if not hasattr(declared.model_class, m))
    assert issubclass(declared.model_class, protocol), f"{name}: missing {missing}"
    for method in protocol_methods(protocol):
        # An inherited placeholder would pass issubclass: the method the model resolves to
        # must do something other than raise NotImplementedError.
        source = inspect.getsource(getattr(declared.model_class, method))
        assert "raise NotImplementedError" not in source, (name, method)


@pytest.mark.parametrize("name", sorted(MODEL_TYPES))
def test_each_declared_name_is_its_classes_model_type(name):
    """The registry names its classes by path; the name must be theirs, and the model class
    must read that config."""
    declared = MODEL_TYPES[name]
    assert declared.config_class.model_type == name
    assert declared.model_class.config_class is declared.config_class


def test_the_baselines_are_not_taken_for_latent_variable_models():
    for declared in MODEL_TYPES.values():
        if not declared.has_latent:
            assert not issubclass(declared.model_class, LatentVariableModel)


def test_a_class_missing_a_method_fails_the_check():
    class NoPrior(nn.Module):
        def checked_batch(self, **batch):
            return batch

        def units_per_example(self, **batch):
            return 1

        def log_likelihood(self, *args, **kwargs):
            return 0

        def posterior_parameters(self, **batch):
            return None

        def posterior_from(self, parameters):
            return None

        def encode(self, *args, **kwargs):
            return None

        def inference_network_parameters(self):
            return []

        def elbo_terms(self, batch, parameters, z=None, keep_logits=True):
            return None

    assert issubclass(NoPrior, ScoredModel)
    assert not issubclass(NoPrior, LatentVariableModel)
    assert protocol_methods(LatentVariableModel) - protocol_methods(ScoredModel) >= {
        "prior_for", "encode", "posterior_from", "posterior_parameters",
    }  # fmt: skip
