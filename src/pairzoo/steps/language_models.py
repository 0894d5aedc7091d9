"""Small causal language models built from a configuration (transformers), LoRA (peft), ONNX.

Nothing is downloaded: transformers and peft come from `pairzoo.hf_env`, offline.
"""

from __future__ import annotations

import copy
import json
import math
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from safetensors.torch import save_file
from torch import nn

from pairzoo import distributed, progress
from pairzoo.atomic import atomic_path, commit
from pairzoo.data.text import TextData
from pairzoo.errors import PairzooError
from pairzoo.export.exporters import (
    OPSET,
    PARITY_TOLERANCE,
    ModelFiles,
    OnnxExport,
    Parity,
    cast_constants,
    drop_source_paths,
)
from pairzoo.hf_env import peft, transformers
from pairzoo.ort_threads import cpu_session
from pairzoo.record.metrics import next_token_log_probs
from pairzoo.record.writer import PairWriter, Training
from pairzoo.timing import timed
from pairzoo.train.loop import parallel

INPUT_NAME = "input_ids"
OUTPUT_NAME = "logits"
EXTERNAL_OVER = 2**31  # bytes of float32 tensors from which an ONNX file keeps them outside
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
    every: int = 1,
) -> nn.Module:
    """Train the parameters that require gradients on batches of `windows`, epoch by epoch.

    Each epoch visits every window once in a seeded order; `on_step(step, model)` runs after every
    `every`-th step. On a GPU the model trains there in mixed precision (bfloat16 where supported;
    `on_step` gets a CPU copy); under torchrun each process takes its share of every batch of
    `batch_size` × processes windows (DistributedDataParallel). The model ends on the CPU.
    """
    here = distributed.setup()
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=config.lr, weight_decay=config.weight_decay)
    if config.schedule == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, config.steps)
    elif config.schedule == "constant":
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    else:
        raise PairzooError(f"unknown schedule {config.schedule!r}: cosine or constant")
    scaler = distributed.grad_scaler(here)
    generator = torch.Generator().manual_seed(config.seed)
    data = torch.from_numpy(windows)
    processes = distributed.world_size()
    batches: list[torch.Tensor] = []
    shown = progress.bar(config.steps, "train", "step")  # no loss: reading it would sync per step
    try:
        net = parallel(model.to(here), here)
        model.train()
        with timed("train"):
            for step in range(1, config.steps + 1):
                if not batches:
                    order = torch.randperm(len(data), generator=generator)
                    batches = list(order.split(config.batch_size * processes))[::-1]
                batch = data[_share(batches.pop())].to(here, non_blocking=True)
                with distributed.autocast(here):
                    loss = net(input_ids=batch, labels=batch).loss
                optimizer.zero_grad()
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                scheduler.step()
                shown.update()
                if on_step is not None and step % every == 0:
                    model.eval()
                    with shown.external_write_mode(nolock=True):  # its prints go above the bar
                        on_step(step, model if here.type == "cpu" else copy.deepcopy(model).cpu())
                    model.train()
    finally:
        shown.close()
        model.cpu()
    return model.eval()


def _share(batch: torch.Tensor) -> torch.Tensor:
    """The windows of a batch this process takes (all without torchrun), none left empty."""
    processes = distributed.world_size()
    if processes == 1:
        return batch
    padded = batch.repeat(-(-processes // len(batch)))
    return padded[distributed.rank() :: processes]


def steps_per_epoch(windows: np.ndarray, batch_size: int) -> int:
    """Batches in one pass over `windows`."""
    return math.ceil(len(windows) / batch_size)


@torch.no_grad()
def _batch_logits(model: nn.Module, windows: np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
    """The model's float32 logits batch by batch, computed on the GPU when there is one.

    A bfloat16 model is run in float32 on its bfloat16 values (as its ONNX file is), without
    TensorFloat-32 (`distributed.full_float32`).
    """
    if next(model.parameters()).dtype != torch.float32:
        model = widened(model)
    here = distributed.device()
    model.to(here).eval()
    try:
        for i in range(0, len(windows), batch_size):
            batch = torch.from_numpy(windows[i : i + batch_size]).to(here)
            with distributed.full_float32():
                logits = model(input_ids=batch).logits
            yield logits.float().cpu().numpy()
    finally:
        model.cpu()


def logits(model: nn.Module, windows: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """The model's float32 logits (windows, context, vocabulary)."""
    return np.concatenate(list(_batch_logits(model, windows, batch_size)))


def lm_metrics(model: nn.Module, windows: np.ndarray, batch_size: int = 64) -> dict[str, float]:
    """Perplexity and next-token top-1 (%) on `windows` (definitions in `record.metrics`).

    Scored batch by batch (the logits of a large vocabulary are never all held); the per-token
    values are those of `perplexity` and `next_token_top1` on all the logits at once.
    """
    log_probs, hits = [], []
    with timed("evaluate"):
        starts = range(0, len(windows), batch_size)
        for start, scores in zip(starts, _batch_logits(model, windows, batch_size), strict=True):
            tokens = windows[start : start + batch_size]
            log_probs.append(next_token_log_probs(scores, tokens))
            hits.append(scores[:, :-1].argmax(-1) == tokens[:, 1:])
    return {
        "next-token-top1": 100.0 * float(np.mean(np.concatenate(hits))),
        "perplexity": float(np.exp(-np.concatenate(log_probs).mean())),
    }


def add_lora(
    model: transformers.PreTrainedModel,
    rank: int,
    seed: int,
    targets: Sequence[str] | str = LINEAR_LAYERS,
) -> peft.PeftModel:
    """A copy of `model` with a LoRA adapter of `rank` (alpha = rank) on the `targets` layers.

    The adapter is PEFT's default: A initialised randomly (seeded), B zero, no dropout.
    `targets` are module names, or "all-linear" (every linear layer but the output head).
    """
    config = peft.LoraConfig(
        r=rank,
        lora_alpha=rank,
        lora_dropout=0.0,
        target_modules=targets if isinstance(targets, str) else list(targets),
        bias="none",
        task_type="CAUSAL_LM",
    )
    torch.manual_seed(seed)
    with warnings.catch_warnings():
        # peft 0.21 calls a transformers method that transformers 5 has renamed
        warnings.filterwarnings("ignore", "`is_gradient_checkpointing`", FutureWarning)
        return peft.get_peft_model(copy.deepcopy(model), config)


def lora_record(model: peft.PeftModel) -> dict:
    """The adapter's rank, alpha and adapted layer names (`LINEAR_LAYERS` order, then by name)."""
    config = model.peft_config["default"]
    order = {name: i for i, name in enumerate(LINEAR_LAYERS)}
    names = {name.rsplit(".", 1)[-1] for name in config.target_modules}
    modules = sorted(names, key=lambda n: (order.get(n, len(order)), n))
    return {"rank": config.r, "alpha": config.lora_alpha, "target_modules": modules}


def clear_name(name: str) -> str:
    """A tensor's name without PEFT's wrapping (its adapter is named `default`).

    `q_proj.base_layer.weight` → `q_proj.weight`, `q_proj.lora_A.default.weight` →
    `q_proj.lora_A.weight`.
    """
    return name.replace(".base_layer.", ".").replace(".default.", ".")


def tied_names(model: nn.Module) -> dict[str, str]:
    """Each tied tensor's clear name → that of the first tensor it shares (GPT-2's `lm_head`)."""
    if isinstance(model, peft.PeftModel):
        model = model.get_base_model()
    first: dict[tuple, str] = {}
    tied = {}
    for name, tensor in model.state_dict().items():
        key = (tensor.data_ptr(), tensor.dtype, tuple(tensor.shape), tuple(tensor.stride()))
        if key in first:
            tied[clear_name(name)] = first[key]
        else:
            first[key] = clear_name(name)
    return tied


def model_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """A model's float tensors by clear name (a PEFT model: its base model with the adapter).

    A tied tensor is held once, under its first name (`tied_names`).
    """
    tied = tied_names(model)
    if isinstance(model, peft.PeftModel):
        model = model.get_base_model()
    return {
        clear_name(name): tensor.detach().cpu().contiguous()
        for name, tensor in model.state_dict().items()
        if tensor.is_floating_point() and clear_name(name) not in tied
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
    onnxruntime against the framework relative to the logits' scale. A model whose float32 tensors
    take `external_over` bytes or more (protobuf's limit is 2 GiB) keeps them as ONNX external
    data, in one file beside the graph (`external_data_file`).
    """

    def __init__(
        self,
        sample: np.ndarray,
        tolerance: float = PARITY_TOLERANCE,
        external_over: int = EXTERNAL_OVER,
    ) -> None:
        self.sample = torch.from_numpy(np.ascontiguousarray(sample, dtype=np.int64))
        self.tolerance = tolerance
        self.external_over = external_over
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
        tied = tied_names(inner)
        renames = {
            i.name: tied.get(clear_name(i.name), clear_name(i.name))
            for i in proto.graph.initializer
        }
        for init in proto.graph.initializer:
            init.name = renames[init.name]
        for node in proto.graph.node:
            node.input[:] = [renames.get(name, name) for name in node.input]
        cast_constants(proto)
        drop_source_paths(proto)
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
        if not self.external(model):  # a larger proto is checked from its file
            onnx.checker.check_model(proto)
        return proto

    def external(self, model: nn.Module) -> bool:
        """Whether `model`'s ONNX keeps its tensors as external data (float32 bytes ≥ the limit)."""
        return 4 * sum(t.numel() for t in model_tensors(model).values()) >= self.external_over

    def export(self, model: nn.Module, path: Path) -> OnnxExport:
        """Write `model` (float32) to `path` atomically after checking parity in onnxruntime.

        With external data, its file is written first, and the graph is checked from its file.
        """
        with timed("export"):
            proto = self.to_proto(model)
        if self.external(model):
            with timed("export"):
                _save_external(proto, Path(path))
                onnx.checker.check_model(str(path))
            source: str | bytes = str(path)
        else:
            source = proto.SerializeToString()
        with timed("parity"):
            session = cpu_session(source)
            ours = session.run(None, {INPUT_NAME: self.sample.numpy()})[0]
            theirs = logits(model, self.sample.numpy())
        parity = Parity.between(ours, theirs).check(self.tolerance, path)
        if isinstance(source, bytes):
            with timed("export"), atomic_path(path) as tmp:
                onnx.save(proto, str(tmp))
        exporter = (
            f"torch.onnx dynamo, optimize=False (torch {torch.__version__}, "
            f"transformers {transformers.__version__})"
        )
        return OnnxExport(
            Path(path), OPSET, parity.max_abs_diff, exporter, output_scale=parity.output_scale
        )


def external_data_file(onnx_path: Path) -> Path:
    """Where the ONNX file at `onnx_path` keeps its external data: `<name>.onnx.data` beside it."""
    return onnx_path.with_name(onnx_path.name + ".data")


def _save_external(proto: onnx.ModelProto, path: Path) -> None:
    """Save `proto` with every tensor in one external data file beside it; the data put first."""
    data = external_data_file(path)
    onnx.external_data_helper.convert_model_to_external_data(
        proto, all_tensors_to_one_file=True, location=data.name, size_threshold=0
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        onnx.save_model(proto, str(scratch / path.name))  # writes the data beside it
        commit(scratch / data.name, data)
        commit(scratch / path.name, path)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


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

    The tensors keep their clear names (`model_tensors`), a tied one once (safetensors metadata
    `tied`: alias → name, and the description say so); a bfloat16 model's ONNX holds the same
    values widened to float32, as external data (`files.onnx_data`) when they are large. The record
    notes the stored dtype and the library versions.
    """
    stem = writer.path_stem(name)
    tensors = model_tensors(model)
    dtype = str(next(iter(tensors.values())).dtype).removeprefix("torch.")
    tied = tied_names(model)
    metadata = {"model": stem.name, **({"tied": json.dumps(tied)} if tied else {})}
    weights = save_tensors(tensors, stem.with_suffix(".safetensors"), metadata)
    ties = [f"{alias} is {kept} (tied: stored and counted once)" for alias, kept in tied.items()]
    float_model = widened(model) if dtype != "float32" else model
    onnx_file = exporter.export(float_model, stem.with_suffix(".onnx"))
    files = dict(others or {})
    if exporter.external(float_model):
        files["onnx_data"] = external_data_file(onnx_file.path)
    return writer.record_model(
        name,
        ModelFiles(onnx_file, weights, "pytorch", torch.__version__, files),
        training=training,
        metrics=metrics,
        description="; ".join(filter(None, [description, *ties])),
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
