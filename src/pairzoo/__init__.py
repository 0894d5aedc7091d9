"""pairzoo: base/updated neural-network pairs for update-compression research."""

import os

from pairzoo.errors import PairzooError

# onnxruntime's Linux wheels send usage telemetry to Microsoft's collector (a DNS lookup, then
# HTTPS) from a background thread; pairzoo talks to 127.0.0.1 only. Set before onnxruntime loads.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

__version__ = "0.1.0"
__all__ = ["PairzooError", "__version__"]
