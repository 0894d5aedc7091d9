import os
import subprocess
import sys

import yaml

from .conftest import ROOT


def _pins(lines):
    return sorted(line.strip() for line in lines if "==" in line and not line.startswith("#"))


def test_environment_yml_pins_what_requirements_txt_pins():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(item["pip"] for item in env["dependencies"] if isinstance(item, dict))
    assert _pins(pip) == _pins((ROOT / "requirements.txt").read_text().splitlines())


def test_lock_agrees_with_requirements():
    lock = dict(line.split("==") for line in _pins((ROOT / "requirements-lock.txt").open()))
    for pin in _pins((ROOT / "requirements.txt").read_text().splitlines()):
        name, version = pin.split("==")
        key = next(k for k in lock if k.lower().replace("_", "-") == name.lower())
        assert lock[key] == version, name


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
