"""Every third-party module the package imports is declared in pyproject.toml: in the core
dependencies, or in an extra when only that extra's features import it (torch, plot, ...)."""

from __future__ import annotations

import ast
import re
import sys
from importlib import metadata

import pytest

from tests.conftest import REPO_ROOT

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

pytestmark = pytest.mark.torchless

# Where an import name is not its distribution's name (normalised: lower case, "-").
DISTRIBUTION_OF = {"yaml": "pyyaml", "git": "gitpython"}


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _third_party_imports() -> dict[str, set[str]]:
    """Top-level module name -> the package files importing it (absolute imports only)."""
    found: dict[str, set[str]] = {}
    for path in sorted((REPO_ROOT / "adaptvc").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top != "adaptvc" and top not in sys.stdlib_module_names:
                    found.setdefault(top, set()).add(path.relative_to(REPO_ROOT).as_posix())
    return found


def _declared() -> tuple[set[str], dict[str, set[str]]]:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]

    def names(requirements: list[str]) -> set[str]:
        return {_normalise(re.split(r"[\s;<>=!~\[]", r, maxsplit=1)[0]) for r in requirements}

    extras = {extra: names(reqs) for extra, reqs in project["optional-dependencies"].items()}
    return names(project["dependencies"]), extras


def _distribution(module: str) -> str:
    installed = metadata.packages_distributions().get(module)
    if installed:
        return _normalise(installed[0])
    return _normalise(DISTRIBUTION_OF.get(module, module))


def test_every_third_party_import_is_declared():
    core, extras = _declared()
    declared_anywhere = core.union(*extras.values())
    imports = _third_party_imports()
    assert {"click", "dvc", "numpy", "torch"} <= set(imports)  # the scan sees the package's imports
    missing = {
        module: sorted(files) for module, files in imports.items() if _distribution(module) not in declared_anywhere
    }
    assert missing == {}, f"imported but not declared in pyproject.toml: {missing}"


def test_extras_hold_only_what_the_core_cannot_import():
    """torch, transformers and peft stay out of the core dependencies (the CLI runs without
    them), and the torch extra names every one of them."""
    core, extras = _declared()
    assert not core & {"torch", "transformers", "peft", "accelerate", "matplotlib"}
    assert {"torch", "transformers", "peft", "huggingface-hub"} <= extras["torch"]
