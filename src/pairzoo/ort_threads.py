"""onnxruntime sessions sized like the rest of the process: as many threads as it was given.

onnxruntime starts a thread per physical core in every session, whatever OMP_NUM_THREADS says;
where a process was given fewer (the ci profile: one; the book: the cores per recipe), sessions
side by side in worker processes would spin on each other's cores.
"""

from __future__ import annotations

import os

import onnxruntime as ort


def session_options() -> ort.SessionOptions:
    """Options with $OMP_NUM_THREADS intra-op threads where it is set, else onnxruntime's own."""
    options = ort.SessionOptions()
    threads = os.environ.get("OMP_NUM_THREADS", "")
    if threads.isdigit() and int(threads) > 0:
        options.intra_op_num_threads = int(threads)
    return options


def cpu_session(
    source: bytes | str, options: ort.SessionOptions | None = None
) -> ort.InferenceSession:
    """A CPU session of an ONNX graph (bytes or a path), by default with `session_options()`."""
    return ort.InferenceSession(
        source, options or session_options(), providers=["CPUExecutionProvider"]
    )
