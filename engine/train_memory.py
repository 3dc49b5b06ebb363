"""`train.memory = full | balanced | low`: what each mode turns on, and applying it to the transformer.

  full      bf16 base weights resident on the GPU; gradient checkpointing as `train.gradient_checkpointing` says
            (off = fastest). Rank-32 LoRA at 1024²: roughly 24–40 GB (a 40–80 GB card).
  balanced  + base weights stored in fp8 (e4m3) and cast to bf16 layer by layer as they run (diffusers layerwise
            casting; LoRA layers, embedders and norms stay in full precision) + gradient checkpointing always.
            Roughly 16–20 GB at 1024² (a 24 GB card).
  low       + the frozen weights of the transformer's blocks live in pinned CPU memory and are copied to the GPU
            block by block as they run (`offload_blocks`) + gradient checkpointing. Slower; lower `train.rank`
            (16) and `train.resolution` (768) help further.

On a CPU only gradient checkpointing applies (it gives identical losses).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.project import TrainSettings

MODES = ("full", "balanced", "low")
NEXT_MODE = {"full": "balanced", "balanced": "low"}


@dataclass
class MemoryPlan:
    mode: str
    gradient_checkpointing: bool
    fp8_storage: bool = False
    block_offload: bool = False
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        knobs = [name for name, on in (("gradient checkpointing", self.gradient_checkpointing),
                                       ("fp8 weight storage", self.fp8_storage),
                                       ("block offload to CPU", self.block_offload)) if on]
        return f"memory mode {self.mode}: {', '.join(knobs) or 'everything resident, no gradient checkpointing'}"


def plan(train: TrainSettings, device: str) -> MemoryPlan:
    mode = train.memory
    cuda = device.startswith("cuda")  # on a CPU only gradient checkpointing applies
    p = MemoryPlan(mode, gradient_checkpointing=train.gradient_checkpointing or mode != "full",
                   fp8_storage=cuda and mode in ("balanced", "low"), block_offload=cuda and mode == "low")
    if mode == "low" and train.rank > 16:
        p.notes.append(f"memory mode low with rank {train.rank}: rank 16 saves more memory")
    return p


def apply(transformer: Any, p: MemoryPlan, device: str, compute_dtype: Any) -> None:
    """Apply the plan after the LoRA is added (fp8 casting must skip LoRA layers) and put the model on `device`."""
    import torch

    if p.gradient_checkpointing:
        transformer.enable_gradient_checkpointing()
    if p.fp8_storage:
        transformer.enable_layerwise_casting(storage_dtype=torch.float8_e4m3fn, compute_dtype=compute_dtype)
    if p.block_offload:
        offload_blocks(transformer, device)
    else:
        transformer.to(device)


def transformer_blocks(transformer: Any) -> list[Any]:
    return [*transformer.noise_refiner, *transformer.context_refiner, *transformer.layers]


def offload_blocks(transformer: Any, device: str) -> None:
    """Keep each block's frozen weights in pinned CPU memory; copy them in just before the block runs.

    diffusers' group offload cannot be used here: it offloads a block by pointing its parameters back at the CPU
    copies taken when it was enabled, which would discard every update of the LoRA weights inside the block.
    Only frozen base weights move here (a frozen weight's GPU copy can simply be dropped after the block ran;
    autograd keeps what backward needs, and gradient checkpointing re-runs the block, hooks included); the
    trainable LoRA weights and everything outside the blocks stay on the GPU.
    """
    import torch

    target = torch.device(device)
    pin = target.type == "cuda"  # pinned memory makes the copies asynchronous
    offloaded: set[int] = set()
    for block in transformer_blocks(transformer):
        cpu = {p: _host_copy(p.data, pin) for p in block.parameters() if not p.requires_grad}
        for param, host in cpu.items():
            param.data = host
            offloaded.add(id(param))

        def onload(module: Any, args: Any, cpu: dict = cpu) -> None:
            for param, host in cpu.items():
                param.data = host.to(target, non_blocking=True)

        def offload(module: Any, args: Any, output: Any, cpu: dict = cpu) -> None:
            for param, host in cpu.items():
                param.data = host

        block.register_forward_pre_hook(onload)
        block.register_forward_hook(offload)
    for param in transformer.parameters():
        if id(param) not in offloaded:
            param.data = param.data.to(target)
    for buf in transformer.buffers():
        buf.data = buf.data.to(target)


def _host_copy(tensor: Any, pin: bool) -> Any:
    host = tensor.to("cpu", copy=True)
    return host.pin_memory() if pin else host


def next_mode_hint(mode: str) -> str:
    """What to try after running out of memory in `mode`."""
    if mode in NEXT_MODE:
        return f"set train.memory = \"{NEXT_MODE[mode]}\" in project.toml"
    return "lower train.resolution (e.g. 768) or train.rank (e.g. 16)"
