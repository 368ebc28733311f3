"""The lazy exports of vaehub, vaehub.hub and vaehub.data (`vaehub.utils.lazy`): a name is
imported from its module when first used, and only then."""

from __future__ import annotations

import sys

import pytest
from helpers import fresh_python


def test_a_name_is_imported_on_first_use_and_then_kept(tmp_path, monkeypatch):
    package = tmp_path / "lazypkg"
    package.mkdir()
    (package / "__init__.py").write_text(
        "from vaehub.utils.lazy import lazy_exports\n"
        "_EXPORTS = {'answer': 'lazypkg.heavy'}\n"
        "__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())\n"
    )
    (package / "heavy.py").write_text("answer = 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import lazypkg

    try:
        assert "lazypkg.heavy" not in sys.modules
        assert "answer" in dir(lazypkg)
        assert lazypkg.answer == 42
        assert "lazypkg.heavy" in sys.modules
        assert "answer" in vars(lazypkg)  # kept: the next lookup does not come back
        with pytest.raises(AttributeError, match="'lazypkg' has no attribute 'question'"):
            lazypkg.question  # noqa: B018
    finally:
        for name in ("lazypkg", "lazypkg.heavy"):
            sys.modules.pop(name, None)


@pytest.mark.parametrize("package", ["vaehub", "vaehub.hub", "vaehub.data"])
def test_every_declared_export_resolves(package):
    import importlib

    module = importlib.import_module(package)
    for name in module._EXPORTS:
        assert getattr(module, name) is not None, f"{package}.{name}"
    with pytest.raises(AttributeError, match=f"'{package}' has no attribute 'no_such_name'"):
        module.no_such_name  # noqa: B018


@pytest.mark.parametrize(
    "first",
    [
        "import transformers.modeling_utils",
        "from transformers import TrainingArguments\n"
        "TrainingArguments(output_dir='unused', report_to='none')",
        "from transformers import AutoModel",
        "from vaehub import TextVAEModel",
    ],
)
def test_the_auto_classes_know_vaehub_after_any_first_import(first):
    """`import vaehub`, then transformers' modules in whatever order a user's script brings
    them in: nothing fails half imported, and AutoConfig knows every vaehub model type.
    (transformers.modeling_utils pulls the Auto modules in half way through its own import;
    registering then imported the vaehub models on a base class not yet defined.)"""
    script = (
        "import vaehub\n"
        f"{first}\n"
        "from transformers import AutoConfig\n"
        "from vaehub.models.auto import MODEL_TYPES\n"
        "for name in MODEL_TYPES:\n"
        "    assert type(AutoConfig.for_model(name)).model_type == name, name\n"
        "print('registered')\n"
    )
    assert fresh_python("-c", script).strip() == "registered"
