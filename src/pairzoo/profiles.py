"""Profiles (`ci`, `full`) and where their outputs and inputs live."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from pairzoo.errors import PairzooError
from pairzoo.script_figures import save_at_exit

PROFILES = ("ci", "full")
ARTIFACTS_ENV = "PAIRZOO_ARTIFACTS"
DATA_ENV = "PAIRZOO_DATA"
# The ci profile computes on one thread: a sum split over threads is added in another order, so
# its bytes would depend on how it was started (the book runs each kernel on one, a shell on all).
CI_THREAD_ENV = {
    name: "1"
    for name in (
        "OMP_NUM_THREADS",  # torch, and OpenMP in libraries loaded from here on
        "MKL_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "TF_NUM_INTRAOP_THREADS",  # read when TensorFlow creates its thread pools
        "TF_NUM_INTEROP_THREADS",
    )
}


def check_profile(profile: str) -> str:
    """Return `profile` if it is known, else raise a clear error."""
    if profile not in PROFILES:
        raise PairzooError(f"unknown profile {profile!r}: choose one of {', '.join(PROFILES)}")
    return profile


def pin_threads(profile: str) -> None:
    """In the ci profile, one compute thread for torch and TensorFlow, here and in child processes.

    Called when a recipe asks for its data or output folder, before it computes anything.
    """
    if check_profile(profile) != "ci":
        return
    os.environ.update(CI_THREAD_ENV)
    if sys.modules.get("torch") is not None:  # loaded before: its pool was sized already
        import torch

        torch.set_num_threads(1)
        if torch.get_num_interop_threads() != 1:
            try:
                torch.set_num_interop_threads(1)
            except RuntimeError:  # once inter-op work has run; it does not change values
                pass
    if sys.modules.get("tensorflow") is not None:
        import tensorflow as tf

        try:
            tf.config.threading.set_intra_op_parallelism_threads(1)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError:  # after TensorFlow's first operation; `load_keras` pins it earlier
            pass


def project_root(start: Path | None = None) -> Path | None:
    """The nearest folder at or above `start` holding pairzoo's pyproject.toml, if any."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file() and 'name = "pairzoo"' in pyproject.read_text(encoding="utf-8"):
            return folder
    return None


def artifacts_dir(profile: str, override: str | os.PathLike[str] | None = None) -> Path:
    """Output folder of a profile.

    `override` if given, else $PAIRZOO_ARTIFACTS/<profile>, else the project's
    `artifacts/<profile>` (or `./artifacts/<profile>` outside the project). A recipe run as a
    script saves its figures there when it exits (`script_figures`).
    """
    pin_threads(profile)
    if override:
        folder = Path(override).resolve()
    elif os.environ.get(ARTIFACTS_ENV):
        folder = Path(os.environ[ARTIFACTS_ENV]).resolve() / profile
    else:
        folder = (project_root() or Path.cwd()) / "artifacts" / profile
    save_at_exit(folder)
    return folder


def data_dir(name: str, layout: str) -> Path:
    """The local folder $PAIRZOO_DATA/<name>; a clear error naming `layout` when it is absent."""
    base = os.environ.get(DATA_ENV)
    if not base:
        raise PairzooError(
            f"the full profile reads {name} from ${DATA_ENV}/{name}, but ${DATA_ENV} is not set; "
            f"expected layout: {layout}"
        )
    folder = Path(base) / name
    if not folder.is_dir():
        raise PairzooError(f"{name} not found at {folder} (from ${DATA_ENV}); expected: {layout}")
    return folder
