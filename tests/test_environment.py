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
