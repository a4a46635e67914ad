"""Packaging facts: a light import, a documented public surface, conda and pip in agreement."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import gramviz

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"torch": "pytorch"}


def test_import_gramviz_loads_torch_only():
    code = "import sys, gramviz; print(sorted(m for m in ('plotly', 'gradio', 'umap', 'sklearn', 'av', 'torchaudio') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_public_api_is_documented():
    for name in gramviz.__all__:
        obj = getattr(gramviz, name)
        if callable(obj):
            assert obj.__doc__ and len(obj.__doc__.strip()) > 20, name


def _requirements(here_only: bool = False) -> dict[str, str]:
    """Name -> version spec of every requirement (environment markers dropped; with ``here_only``,
    only those whose marker holds for this Python)."""
    from packaging.markers import Marker

    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        reqs += extra
    out = {}
    for r in reqs:
        r, _, marker = r.partition(";")
        if here_only and marker.strip() and not Marker(marker.strip()).evaluate():
            continue
        name, spec = re.match(r"([A-Za-z0-9_.\-]+)\s*(.*)", r).groups()
        out[CONDA_NAMES.get(name.lower(), name.lower())] = spec.replace(" ", "")
    return out


def test_environment_yml_lists_the_same_dependencies_as_pyproject():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = {}
    for dep in env["dependencies"]:
        if isinstance(dep, str) and dep not in ("pip",) and not dep.startswith("python"):
            name, spec = re.match(r"([A-Za-z0-9_.\-]+)\s*(.*)", dep).groups()
            conda[name.lower()] = spec.replace(" ", "")
    assert conda == _requirements()


def test_constraints_pin_every_requirement():
    pins = {
        line.split("==")[0].lower().replace("_", "-"): line.split("==")[1]
        for line in (ROOT / "constraints.txt").read_text().splitlines()
        if "==" in line
    }
    for name in _requirements(here_only=True):
        pip_name = {v: k for k, v in CONDA_NAMES.items()}.get(name, name).replace("_", "-")
        assert pip_name in pins, f"{pip_name} is not pinned in constraints.txt"
    assert pins["torch"] == pins["torchaudio"], "torch and torchaudio must be the same release"
