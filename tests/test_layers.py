"""The package's imports against the picture in docs/architecture.md.

Every `import` and `from ... import` of every module is read, those inside functions too (an
import moved into a function hides a dependency, it does not remove it). A module may import
its own layer and the layers below it, never one above; the model families do not import
each other; and no chain of imports returns to where it started.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "vaehub"
ARCHITECTURE = ROOT / "docs" / "architecture.md"
FAMILIES = ("text", "image", "linear")
# Above every layer: the public names, and the old import paths served for one release.
FRONT_DOOR = ("vaehub", "vaehub.__main__", "vaehub._compat", "vaehub._autoregister")


def declared_layers() -> list[str]:
    """The layers, top first, from the line between the `layers` markers of the page."""
    text = ARCHITECTURE.read_text()
    block = re.search(r"<!-- layers -->\s*```\s*\n(.*?)\n```", text, re.S)
    assert block, f"{ARCHITECTURE} has no ```-fenced line of layers after <!-- layers -->"
    return [name.strip() for name in block.group(1).split("→")]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imported(path: Path, name: str, known: set[str]) -> set[str]:
    """The vaehub modules `path` (module `name`) imports, submodules resolved where named."""
    found = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("vaehub")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1]
                                + ([base] if base else []))
            if not base.startswith("vaehub"):
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in known else base)
    return {module for module in found if module in known and module != name}


def graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {name: imported(path, name, known) for name, path in found.items()}


def layer_of(module: str, layers: list[str]) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in layers else None


def test_every_module_lives_in_a_declared_layer():
    layers = declared_layers()
    outside = [m for m in modules() if m not in FRONT_DOOR and layer_of(m, layers) is None]
    assert outside == [], f"modules outside the layers of {ARCHITECTURE.name}: {outside}"
    missing = [layer for layer in layers if not (PACKAGE / layer).is_dir()]
    assert missing == [], f"layers declared with no folder: {missing}"


def test_imports_point_down_only():
    layers = declared_layers()
    rank = {layer: index for index, layer in enumerate(layers)}  # 0 is the top
    upward = []
    for module, targets in graph().items():
        if module in FRONT_DOOR:  # the package's front door imports what it exports
            continue
        for target in targets:
            if target in FRONT_DOOR:
                upward.append(f"{module} -> vaehub (the front door, above every layer)")
                continue
            here, there = layer_of(module, layers), layer_of(target, layers)
            if rank[there] < rank[here]:
                upward.append(f"{module} ({here}) -> {target} ({there})")
    assert upward == [], "imports that point up:\n" + "\n".join(sorted(upward))


def test_model_families_stand_apart():
    """A family (text, image, linear) uses the shared model code, not another family; the
    shared code uses no family, except the registry that names them all."""
    crossing = []
    for module, targets in graph().items():
        parts = module.split(".")
        if parts[:2] != ["vaehub", "models"]:
            continue
        family = parts[2] if len(parts) > 3 and parts[2] in FAMILIES else None
        for target in targets:
            tparts = target.split(".")
            if tparts[:2] != ["vaehub", "models"] or len(tparts) < 4 or tparts[2] not in FAMILIES:
                continue
            if family is None and module != "vaehub.models.auto":
                crossing.append(f"{module} -> {target}")
            elif family is not None and tparts[2] != family:
                crossing.append(f"{module} -> {target}")
    assert crossing == [], "\n".join(sorted(crossing))


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan 1972)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in edges.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_no_import_circles():
    assert circles(graph()) == []


@pytest.mark.parametrize(
    "edges, expected",
    [
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, [["a", "b", "c"]]),
        ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
        ({"a": {"b"}, "b": {"a"}, "c": {"a"}}, [["a", "b"]]),
    ],
)
def test_circle_finder(edges, expected):
    assert circles(edges) == expected


def test_the_walk_sees_imports_inside_functions(tmp_path):
    path = tmp_path / "probe.py"
    path.write_text("def f():\n    from vaehub.commands import main\n")
    assert imported(path, "vaehub.models.probe", {"vaehub.commands.main", "vaehub.commands"}) == {
        "vaehub.commands.main"
    }


def test_the_package_imports_no_old_path():
    """The flat 0.1 paths are served for users only; the package itself names real modules."""
    known = set(modules())
    stale = []
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                if node.module.startswith("vaehub.") and node.module not in known:
                    stale.append(f"{name}: from {node.module} import ...")
            elif isinstance(node, ast.Import):
                stale += [
                    f"{name}: import {alias.name}"
                    for alias in node.names
                    if alias.name.startswith("vaehub.") and alias.name not in known
                ]
    assert stale == []


@pytest.mark.parametrize(
    ("old", "name", "new"),
    [
        ("vaehub.cli", "main", "vaehub.commands.main"),
        ("vaehub.trainer", "VAETrainer", "vaehub.training.trainer"),
        ("vaehub.trainer", "VAETrainingArguments", "vaehub.training.arguments"),
        ("vaehub.configuration_vae", "TextLMConfig", "vaehub.models.text.configuration_text_lm"),
        ("vaehub.verification", "read_verification", "vaehub.hub.verification"),
        ("vaehub.svi_settings", "changed_refinement", "vaehub.latent.refinement"),
        ("vaehub.tokenization", "pad_rows", "vaehub.data.text"),
    ],
)
def test_an_old_path_still_imports_with_a_warning(old, name, new):
    import importlib
    import sys

    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=f"{old} moved to vaehub"):
        module = importlib.import_module(old)
    assert getattr(module, name) is getattr(importlib.import_module(new), name)
