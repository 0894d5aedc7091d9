"""pairzoo: base/updated neural-network pairs for update-compression research."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from pairzoo.errors import PairzooError

# pairzoo talks to 127.0.0.1 only. Libraries read these switches when they load or start (Flower
# at import, onnxruntime when it loads, Ray in `ray.init`, whose processes inherit them), so they
# are set on `import pairzoo`, and libraries loaded earlier are told directly where they can be.
# Telemetry is forced off (a user's setting cannot turn it on from inside a recipe).
NO_TELEMETRY_ENV = {
    "FLWR_TELEMETRY_ENABLED": "0",  # Flower posts usage events to telemetry.flower.ai
    "RAY_USAGE_STATS_ENABLED": "0",  # Ray reports cluster usage to usage-stats.ray.io
    "ORT_DISABLE_TELEMETRY": "1",  # onnxruntime's Linux wheels: a DNS lookup, then HTTPS
    "HF_HUB_DISABLE_TELEMETRY": "1",  # Hugging Face libraries, should a later recipe use them
    "DO_NOT_TRACK": "1",  # the common switch that several tools honour
}
# Downloads: none in the ci profile; the full profile reads from $PAIRZOO_DATA and $TORCH_HOME.
# Defaults only, so a user may allow a download explicitly.
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def _quiet_loaded_libraries() -> None:
    """Switch telemetry off in libraries imported before pairzoo (they read the variables once)."""
    os.environ.update(NO_TELEMETRY_ENV)
    for name, value in OFFLINE_ENV.items():
        os.environ.setdefault(name, value)
    flower = sys.modules.get("flwr.supercore.telemetry")
    if flower is not None:  # read at import into this global; consulted at every event
        flower.FLWR_TELEMETRY_ENABLED = "0"
    onnxruntime = sys.modules.get("onnxruntime")
    if onnxruntime is not None:  # too late for its initialisation event: import pairzoo first
        onnxruntime.disable_telemetry_events()


_quiet_loaded_libraries()

__version__ = "0.1.0"
__all__ = ["NO_TELEMETRY_ENV", "OFFLINE_ENV", "PairzooError", "__version__", "evaluate", "open"]

if TYPE_CHECKING:
    from pairzoo.bench.harness import evaluate
    from pairzoo.bench.testset import open


def __getattr__(name: str) -> object:
    """`pairzoo.open` and `pairzoo.evaluate`, imported on first use (they load numpy and onnx)."""
    if name == "open":
        from pairzoo.bench.testset import open

        return open
    if name == "evaluate":
        from pairzoo.bench.harness import evaluate

        return evaluate
    raise AttributeError(f"module 'pairzoo' has no attribute {name!r}")
