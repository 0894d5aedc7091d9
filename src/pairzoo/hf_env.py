"""Hugging Face libraries, imported offline: no hub access, no TensorFlow, no telemetry.

Import `transformers` and `peft` from here (and `datasets` after it). The environment is set
before they are imported, and torchvision is imported first (TensorFlow imported before torchvision
crashes the process).
"""

import os

OFFLINE = {
    "USE_TF": "0",
    "USE_TORCH": "1",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
}
for _key, _value in OFFLINE.items():
    os.environ.setdefault(_key, _value)

import torchvision  # noqa: E402, F401, I001  (before anything that might import TensorFlow)
import huggingface_hub  # noqa: E402
import peft  # noqa: E402
import transformers  # noqa: E402

transformers.utils.logging.set_verbosity_error()

__all__ = ["huggingface_hub", "peft", "transformers"]
