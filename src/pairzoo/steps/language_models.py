"""Small causal language models built from a configuration (transformers), LoRA (peft), ONNX.

Nothing is downloaded: transformers and peft come from `pairzoo.hf_env`, offline.
"""

from __future__ import annotations

import copy
import json
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import numpy_helper
from safetensors.torch import save_file
from torch import nn

from pairzoo.atomic import atomic_path
from pairzoo.data.text import TextData
from pairzoo.errors import PairzooError
from pairzoo.export.exporters import (
    OPSET,
    PARITY_TOLERANCE,
    ModelFiles,
    OnnxExport,
    Parity,
    cast_constants,
)
from pairzoo.hf_env import peft, transformers
from pairzoo.record.metrics import next_token_top1, perplexity
from pairzoo.record.writer import PairWriter, Training
from pairzoo.timing import timed

INPUT_NAME = "input_ids"
OUTPUT_NAME = "logits"
LINEAR_LAYERS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class LMConfig:
    """A Llama-style decoder-only model: sizes only, everything else transformers' defaults."""

    vocab_size: int = 512
    hidden_size: int = 128
    intermediate_size: int = 384
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    context: int = 64

    def record(self) -> dict:
        """The configuration, as the manifest stores it."""
        return {"model_type": "llama", **asdict(self)}

    def build(self, seed: int) -> transformers.LlamaForCausalLM:
        """A freshly initialised `LlamaForCausalLM` (seeded; eager attention, no cache)."""
        config = transformers.LlamaConfig(
            vocab_size=self.vocab_size,
            hidden_size=self.hidden_size,
            intermediate_size=self.intermediate_size,
            num_hidden_layers=self.num_hidden_layers,
            num_attention_heads=self.num_attention_heads,
            num_key_value_heads=self.num_attention_heads,
            max_position_embeddings=self.context,
            tie_word_embeddings=False,
            use_cache=False,
            attn_implementation="eager",
        )
        torch.manual_seed(seed)
        return transformers.LlamaForCausalLM(config).eval()


@dataclass(frozen=True)
class LMTrainConfig:
    """How a language model is trained: AdamW for `steps` batches of windows, seeded."""

    steps: int
    lr: float = 3e-3
    batch_size: int = 16
    schedule: str = "cosine"  # "cosine" to zero, or "constant"
    weight_decay: float = 0.0
    seed: int = 0

    def record(self) -> dict:
        """The configuration, as the manifest stores it."""
        return {"optimizer": "adamw", "loss": "next-token cross-entropy", **asdict(self)}


def train_lm(
    model: nn.Module,
    windows: np.ndarray,
    config: LMTrainConfig,
    on_step: Callable[[int, nn.Module], None] | None = None,
) -> nn.Module:
    """Train the parameters that require gradients on batches of `windows`, epoch by epoch.

    Each epoch visits every window once in a seeded order; `on_step(step, model)` runs after each.
    """
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=config.lr, weight_decay=config.weight_decay)
    if config.schedule == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, config.steps)
    elif config.schedule == "constant":
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    else:
        raise PairzooError(f"unknown schedule {config.schedule!r}: cosine or constant")
    generator = torch.Generator().manual_seed(config.seed)
    data = torch.from_numpy(windows)
    batches: list[torch.Tensor] = []
    model.train()
    with timed("train"):
        for step in range(1, config.steps + 1):
            if not batches:
                order = torch.randperm(len(data), generator=generator)
                batches = list(order.split(config.batch_size))[::-1]
            batch = data[batches.pop()]
            loss = model(input_ids=batch, labels=batch).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            if on_step is not None:
                model.eval()
                on_step(step, model)
                model.train()
    return model.eval()


def steps_per_epoch(windows: np.ndarray, batch_size: int) -> int:
    """Batches in one pass over `windows`."""
    return math.ceil(len(windows) / batch_size)


@torch.no_grad()
def logits(model: nn.Module, windows: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """The model's float32 logits (windows, context, vocabulary).

    A bfloat16 model is run in float32 on its bfloat16 values (as its ONNX file is).
    """
    if next(model.parameters()).dtype != torch.float32:
        model = widened(model)
    model.eval()
    parts = [
        model(input_ids=torch.from_numpy(windows[i : i + batch_size])).logits.float().numpy()
        for i in range(0, len(windows), batch_size)
    ]
    return np.concatenate(parts)


def lm_metrics(model: nn.Module, windows: np.ndarray) -> dict[str, float]:
    """Perplexity and next-token top-1 (%) on `windows` (definitions in `record.metrics`)."""
    with timed("evaluate"):
        scores = logits(model, windows)
    return {
        "next-token-top1": next_token_top1(scores, windows),
        "perplexity": perplexity(scores, windows),
    }


def add_lora(model: transformers.LlamaForCausalLM, rank: int, seed: int) -> peft.PeftModel:
    """A copy of `model` with a LoRA adapter of `rank` (alpha = rank) on every linear layer.

    The adapter is PEFT's default: A initialised randomly (seeded), B zero, no dropout.
    """
    config = peft.LoraConfig(
        r=rank,
        lora_alpha=rank,
        lora_dropout=0.0,
        target_modules=list(LINEAR_LAYERS),
        bias="none",
        task_type="CAUSAL_LM",
    )
    torch.manual_seed(seed)
    with warnings.catch_warnings():
        # peft 0.21 calls a transformers method that transformers 5 has renamed
        warnings.filterwarnings("ignore", "`is_gradient_checkpointing`", FutureWarning)
        return peft.get_peft_model(copy.deepcopy(model), config)


def clear_name(name: str) -> str:
    """A tensor's name without PEFT's wrapping (its adapter is named `default`).

    `q_proj.base_layer.weight` → `q_proj.weight`, `q_proj.lora_A.default.weight` →
    `q_proj.lora_A.weight`.
    """
    return name.replace(".base_layer.", ".").replace(".default.", ".")


def model_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """A model's float tensors by clear name (a PEFT model: its base model with the adapter)."""
    if isinstance(model, peft.PeftModel):
        model = model.get_base_model()
    return {
        clear_name(name): tensor.detach().cpu().contiguous()
        for name, tensor in model.state_dict().items()
        if tensor.is_floating_point()
    }


def save_tensors(tensors: Mapping[str, torch.Tensor], path: Path, metadata: dict) -> Path:
    """Write tensors as safetensors, atomically."""
    with timed("export"), atomic_path(path) as tmp:
        save_file(dict(tensors), str(tmp), metadata=metadata)
    return path


def to_bfloat16(model: nn.Module) -> nn.Module:
    """A copy of `model` with its parameters rounded to bfloat16.

    Buffers (RoPE's frequencies) are not part of the stored model and stay float32.
    """
    return _cast_parameters(model, torch.bfloat16)


def widened(model: nn.Module) -> nn.Module:
    """A copy of a bfloat16 model with float32 parameters: the same values, exactly."""
    return _cast_parameters(model, torch.float32)


def _cast_parameters(model: nn.Module, dtype: torch.dtype) -> nn.Module:
    cast = copy.deepcopy(model)
    for parameter in cast.parameters():
        parameter.data = parameter.data.to(dtype)
    return cast


class CausalLMExporter:
    """Exports causal LMs for a fixed context: token ids (batch, context) in, logits out.

    The dynamo exporter runs without its optimiser, and every float tensor of the model is an
    initializer under its clear name (`model_tensors`), so an adapter's tensors keep theirs. One
    trace per architecture; each model's tensors are written into it, and each file is checked in
    onnxruntime against the framework relative to the logits' scale.
    """

    def __init__(self, sample: np.ndarray, tolerance: float = PARITY_TOLERANCE) -> None:
        self.sample = torch.from_numpy(np.ascontiguousarray(sample, dtype=np.int64))
        self.tolerance = tolerance
        self._templates: dict[tuple, onnx.ModelProto] = {}

    def _trace(self, model: nn.Module) -> onnx.ModelProto:
        inner = model.get_base_model() if isinstance(model, peft.PeftModel) else model
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                inner,
                (self.sample,),
                dynamo=True,
                optimize=False,
                opset_version=OPSET,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_shapes=({0: torch.export.Dim("batch")},),
                verbose=False,
            )
        proto = program.model_proto
        renames = {i.name: clear_name(i.name) for i in proto.graph.initializer}
        for init in proto.graph.initializer:
            init.name = renames[init.name]
        for node in proto.graph.node:
            node.input[:] = [renames.get(name, name) for name in node.input]
        cast_constants(proto)
        return proto

    def to_proto(self, model: nn.Module) -> onnx.ModelProto:
        """The model as an ONNX proto holding its current tensors under their clear names."""
        model.eval()
        state = model_tensors(model)
        key = tuple((k, tuple(v.shape)) for k, v in state.items())
        if key not in self._templates:
            self._templates[key] = self._trace(model)
        proto = onnx.ModelProto()
        proto.CopyFrom(self._templates[key])
        initializers = {init.name: init for init in proto.graph.initializer}
        absent = sorted(set(state) - set(initializers))
        if absent:
            raise PairzooError(f"the ONNX graph lacks framework tensors {absent[:5]}")
        for name, tensor in state.items():
            value = tensor.float().numpy()
            initializers[name].CopyFrom(numpy_helper.from_array(value, name))
        onnx.checker.check_model(proto)
        return proto

    def export(self, model: nn.Module, path: Path) -> OnnxExport:
        """Write `model` (float32) to `path` atomically after checking parity in onnxruntime."""
        with timed("export"):
            proto = self.to_proto(model)
        with timed("parity"):
            session = ort.InferenceSession(
                proto.SerializeToString(), providers=["CPUExecutionProvider"]
            )
            ours = session.run(None, {INPUT_NAME: self.sample.numpy()})[0]
            theirs = logits(model, self.sample.numpy())
        parity = Parity.between(ours, theirs).check(self.tolerance, path)
        with timed("export"), atomic_path(path) as tmp:
            onnx.save(proto, str(tmp))
        exporter = (
            f"torch.onnx dynamo, optimize=False (torch {torch.__version__}, "
            f"transformers {transformers.__version__})"
        )
        return OnnxExport(
            Path(path), OPSET, parity.max_abs_diff, exporter, output_scale=parity.output_scale
        )


def delta_rank(base: np.ndarray, updated: np.ndarray, relative: float = 1e-4) -> int:
    """Numerical rank of updated − base: singular values above `relative` of the largest."""
    values = np.linalg.svd((updated.astype(np.float64) - base), compute_uv=False)
    if values.size == 0 or values[0] == 0.0:
        return 0
    return int((values > relative * values[0]).sum())


def versions() -> dict[str, str]:
    """Versions of the libraries that made and saved the models."""
    return {"transformers": transformers.__version__, "peft": peft.__version__}


def adapter_tensors(names: Sequence[str]) -> list[str]:
    """The LoRA tensors among `names`."""
    return sorted(n for n in names if ".lora_A." in n or ".lora_B." in n)


def window_subset(windows: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """A seeded `fraction` of the windows, in their order; one seed's subsets are nested."""
    if not 0.0 < fraction <= 1.0:
        raise PairzooError(f"subset fraction must be in (0, 1], got {fraction}")
    order = np.random.default_rng(seed).permutation(len(windows))
    return windows[np.sort(order[: max(1, round(fraction * len(windows)))])]


def add_language_model(
    writer: PairWriter,
    name: str,
    model: nn.Module,
    exporter: CausalLMExporter,
    *,
    training: Training,
    metrics: dict[str, float],
    data: TextData,
    description: str = "",
    others: Mapping[str, Path] | None = None,
) -> dict:
    """Save a (PEFT or bfloat16) causal LM as safetensors in its own dtype and float32 ONNX.

    The tensors keep their clear names (`model_tensors`); a bfloat16 model's ONNX holds the same
    values widened to float32. The record notes the stored dtype and the library versions.
    """
    stem = writer.path_stem(name)
    tensors = model_tensors(model)
    dtype = str(next(iter(tensors.values())).dtype).removeprefix("torch.")
    weights = save_tensors(tensors, stem.with_suffix(".safetensors"), {"model": stem.name})
    float_model = widened(model) if dtype != "float32" else model
    onnx_file = exporter.export(float_model, stem.with_suffix(".onnx"))
    return writer.record_model(
        name,
        ModelFiles(onnx_file, weights, "pytorch", torch.__version__, dict(others or {})),
        training=training,
        metrics=metrics,
        description=description,
        classes=[],
        data=data,
        extra={"libraries": versions(), "dtype": dtype},
    )


def save_adapter(model: peft.PeftModel, folder: Path) -> None:
    """Save the adapter as PEFT does (adapter_model.safetensors, adapter_config.json).

    PEFT lists `target_modules` in set order, which changes from run to run: the list is
    sorted so that the file's bytes are the same. PEFT's placeholder README.md is removed
    (pairzoo writes the model cards).
    """
    model.save_pretrained(str(folder))
    config_file = folder / "adapter_config.json"
    config = json.loads(config_file.read_text("utf-8"))
    config["target_modules"] = sorted(config["target_modules"])
    config_file.write_text(json.dumps(config, indent=2, sort_keys=True), "utf-8")
    (folder / "README.md").unlink(missing_ok=True)
