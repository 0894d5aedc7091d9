import ast
import functools
import importlib.metadata
import os
import subprocess
import sys
import tomllib

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import pairzoo

from .conftest import ROOT

PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _pins(lines):
    return sorted(line.strip() for line in lines if "==" in line and not line.startswith("#"))


def _lock():
    pins = _pins((ROOT / "requirements-lock.txt").read_text().splitlines())
    return {canonicalize_name(name): version for name, version in (p.split("==") for p in pins)}


def _declared():
    """Requirements of pyproject.toml by group: "" for the base dependencies, else the extra."""
    groups = {"": PROJECT["dependencies"], **PROJECT["optional-dependencies"]}
    return {group: [Requirement(line) for line in lines] for group, lines in groups.items()}


def _package_imports():
    """Every module imported by absolute name in src/pairzoo, with the first file importing it."""
    found = {}
    for path in sorted((ROOT / "src" / "pairzoo").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name, path.relative_to(ROOT))
    return found


def _distributions(module):
    """The distributions that provide an installed module (its own name when not installed)."""
    top = module.partition(".")[0]
    names = _providers().get(top, [top])
    if len(names) > 1:  # a namespace package such as google: the distributions holding the module
        prefix = module.replace(".", "/") + "/"
        holding = [n for n in names if any(str(f).startswith(prefix) for f in _files(n))]
        names = holding or names
    return {canonicalize_name(name) for name in names}


@functools.cache
def _providers():
    return importlib.metadata.packages_distributions()


def _files(distribution):
    return importlib.metadata.files(distribution) or []


def test_every_third_party_import_of_the_package_is_declared():
    declared = {canonicalize_name(r.name) for reqs in _declared().values() for r in reqs}
    imports = {
        module: path
        for module, path in _package_imports().items()
        if module.partition(".")[0] not in sys.stdlib_module_names | {"pairzoo"}
    }
    tops = {module.partition(".")[0] for module in imports}
    assert {"torch", "networkx", "scipy", "keras", "flwr", "jupyter_cache", "yaml"} <= tops
    undeclared = {
        f"{module} ({path}): {sorted(_distributions(module))}"
        for module, path in imports.items()
        if not _distributions(module) & declared
    }
    assert not undeclared, "imported but not in pyproject.toml's dependencies or extras"


# The project's fixed decision: these two are pinned exactly, everything else is a range.
PINNED_EXACTLY = {"torch", "torchvision"}


def test_pyproject_admits_the_locked_versions():
    lock = _lock()
    for group, requirements in _declared().items():
        if group == "gpu":  # onnxruntime-gpu replaces onnxruntime; not in the CPU lock
            continue
        for requirement in requirements:
            name = canonicalize_name(requirement.name)
            if name == "pairzoo":  # dev = pairzoo[the other extras]
                assert set(requirement.extras) <= set(_declared()), requirement
                continue
            assert name in lock, f"{requirement} ({group or 'base'}) is not in the lock"
            assert requirement.specifier.contains(lock[name], prereleases=True), requirement
            exact = any(s.operator == "==" for s in requirement.specifier)
            assert exact == (name in PINNED_EXACTLY), requirement


def test_environment_yml_installs_what_make_installs():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = [item for item in env["dependencies"] if isinstance(item, str)]
    pip = next(item["pip"] for item in env["dependencies"] if isinstance(item, dict))
    makefile = (ROOT / "Makefile").read_text().splitlines()
    install = next(line.split() for line in makefile if "pip install" in line and " -r " in line)
    files = {(option, install[i + 1]) for i, option in enumerate(install) if option in {"-r", "-c"}}
    assert {("-r", "requirements.txt"), ("-c", "requirements-lock.txt")} <= files
    assert {tuple(line.split(maxsplit=1)) for line in pip if line.startswith("-")} == files | {
        ("-e", ".")
    }
    assert not [line for line in pip if not line.startswith("-")], "pins belong in the files"
    assert any("pip install" in line and line.endswith("-e .") for line in makefile)
    python = next(item for item in conda if item.startswith("python="))
    assert PROJECT["requires-python"] == f">={python[7:]},<3.13"  # 3.12: .ci/python312


def test_lock_agrees_with_requirements():
    lock = _lock()
    for pin in _pins((ROOT / "requirements.txt").read_text().splitlines()):
        name, version = pin.split("==")
        assert lock[canonicalize_name(name)] == version, name


def test_citation_names_the_package_and_its_version():
    text = (ROOT / "CITATION.cff").read_text()
    citation = yaml.safe_load(text)
    assert {"cff-version", "message", "title", "authors"} <= set(citation)
    assert citation["version"] == pairzoo.__version__
    assert citation["title"] == PROJECT["name"]
    assert citation["license"] == PROJECT["license"]
    assert citation["type"] == "software"
    assert citation["authors"] == [{"name": "pairzoo developers"}]


def test_citation_is_valid_cff():
    cffconvert = pytest.importorskip("cffconvert")
    cffconvert.Citation(cffstr=(ROOT / "CITATION.cff").read_text()).validate()


def test_ci_profile_computes_on_one_thread_however_started():
    code = (
        "import torch; torch.set_num_threads(2)\n"
        "from pairzoo.profiles import artifacts_dir; artifacts_dir('full')\n"
        "assert torch.get_num_threads() == 2\n"
        "artifacts_dir('ci'); import os\n"
        "print(torch.get_num_threads(), torch.get_num_interop_threads())\n"
        "print(os.environ['OMP_NUM_THREADS'], os.environ['TF_NUM_INTRAOP_THREADS'])"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == ["1", "1", "1", "1"]
