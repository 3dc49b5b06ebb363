"""LoRA training of Z-Image on a character dataset: the job runner `run_job(ctx)` and the foreground entry.

One run: scan the dataset → latents and caption embeddings from the cache (the VAE and text encoder load only for
what is missing, then leave the GPU) → the transformer (+ Turbo training adapter merged) with a peft LoRA and the
memory mode's knobs → the loop (Prodigy/AdamW, accumulation, clipping) with metrics per step, checkpoints,
validation samples and user requests → `loras/NAME.safetensors`. Maths in `train_step`, data in `train_data`,
caches in `train_cache`, checkpoints in `train_checkpoint`, memory modes in `train_memory`, samples in
`train_sample`, the training adapter in `train_adapter`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from engine import __version__, protocol
from engine.errors import JobFailed, describe, is_disk_full, is_oom
from engine.project import Settings, settings_to_dict
from engine.train_checkpoint import checkpoints_root

SMOOTHING = 0.9  # loss_smooth: bias-corrected exponential moving average
# Settings whose change makes a checkpoint unusable (the LoRA's shapes or the optimizer's state differ).
INCOMPATIBLE = ("train.rank", "train.train_refiners", "train.optimizer")
# Settings that change what is trained, reported when a resumed run's settings differ from its checkpoint's.
TRACKED = ("trigger", "excluded", "model", "train")


def run_job(ctx: Any) -> dict[str, Any]:
    """Engine entry: one training run (new or resumed) with the project's settings."""
    from engine import generate

    generate.release()  # the generation pipeline kept between jobs would hold the GPU memory the run needs
    return Trainer(ctx, ctx.project.load()).run()


@dataclasses.dataclass
class Progress:
    """Counters that a checkpoint saves and a resume restores."""

    step: int = 0  # optimizer steps done
    loss_ema: float = 0.0
    ema_weight: float = 0.0  # for bias correction of the moving average
    last_loss: float = float("nan")


class Trainer:
    def __init__(self, ctx: Any, settings: Settings):
        self.ctx = ctx
        self.s = settings
        self.t = settings.train
        self.project = ctx.project
        self.params = ctx.params or {}
        self.run_name = ""
        self.progress = Progress()
        self.last_checkpoint: int | None = None
        self.total_steps = 0
        self.total_epochs = 0
        self.steps_per_epoch = 1
        self.sec_per_step: float | None = None

    # --- the run ------------------------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        resume_dir = self._choose_run()
        self._emit_run("running", message="preparing", config=self._config())
        try:
            return self._train(resume_dir)
        except Exception as exc:
            failure: JobFailed | None = None
            if is_oom(exc):
                failure = JobFailed(self._oom_message())
            elif is_disk_full(exc):
                failure = JobFailed(self._disk_message(exc))
            self._free()
            self._emit_run("failed", message=str(failure) if failure else describe(exc))
            if failure is not None:
                raise failure from None
            raise

    def _train(self, resume_dir: Path | None) -> dict[str, Any]:
        import torch

        from engine import train_cache, train_data, train_memory
        from engine.models import load_components, model_identity, pick_device, pick_dtype
        from engine.train_sample import Sampler, sample_texts
        from engine.train_step import ADAPTER, add_lora, make_optimizer

        s, t, ctx = self.s, self.t, self.ctx
        self.device = pick_device(s.model.device)
        self.dtype = pick_dtype(t.precision, self.device)
        self.items = train_data.scan(self.project, s, ctx.log)
        self.dataset_hash = train_data.manifest_hash(self.items)
        self.steps_per_epoch = train_data.steps_per_epoch(self.items, t.batch_size, t.grad_accum)
        max_steps = self.params.get("max_steps") or t.max_steps or 0
        self.total_steps = t.epochs * self.steps_per_epoch
        if max_steps:
            self.total_steps = min(self.total_steps, max_steps)
        self.total_epochs = math.ceil(self.total_steps / self.steps_per_epoch)
        ckpt_state = self._read_resume_state(resume_dir) if resume_dir else None
        buckets = len({i.bucket for i in self.items})
        ctx.log(f"run {self.run_name}: {len(self.items)} images in {buckets} bucket(s), {self.steps_per_epoch} "
                f"steps per epoch, {self.total_steps} steps in {self.total_epochs} epoch(s); LoRA rank {t.rank}, "
                f"alpha {t.alpha:g}, {t.optimizer}, {self.device}")

        identity = model_identity(s.model)
        feats = train_cache.prepare(self.items, sample_texts(s), s.model, identity, self.project.cache_dir,
                                    t.flip, self.device, self.dtype, ctx.loading)
        if feats.encoded_latents or feats.encoded_texts:
            ctx.log(f"cached {feats.encoded_latents} latents and {feats.encoded_texts} caption embeddings")
        self.feats = feats

        ctx.loading("transformer", 0, 1, "loading the transformer")
        parts = load_components(s.model, ["scheduler", "transformer"], self.dtype, progress=ctx.loading)
        transformer = parts["transformer"]
        ctx.loading("transformer", 1, 1, "transformer loaded")
        self.turbo_merged = self._merge_training_adapter(transformer)
        named = add_lora(transformer, t, t.seed)
        self.param_names = [n for n, _ in named]
        self.lora_params = [p for _, p in named]
        plan = train_memory.plan(t, self.device)
        for note in plan.notes:
            ctx.log(note)
        ctx.log(plan.describe())
        train_memory.apply(transformer, plan, self.device, self.dtype)
        transformer.train()
        self.transformer = transformer
        self.optimizer = make_optimizer(self.lora_params, t)
        self.sampler = Sampler(s, parts["scheduler"], self._load_vae, feats.text, self.device, self.dtype,
                               self.turbo_merged, ADAPTER)
        if ckpt_state is not None:
            self._restore(resume_dir, ckpt_state)
        elif self.ctx.attempts or self._has_history():
            ctx.emit(protocol.EV_REWIND, {"run": self.run_name, "step": 0})  # a fresh start: old metrics go
        if torch.cuda.is_available() and self.device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        ctx.loading("ready", 1, 1, "training")
        return self._loop()

    def _loop(self) -> dict[str, Any]:
        from engine.train_data import epoch_batches

        t, ctx = self.t, self.ctx
        spe = self.steps_per_epoch
        self._emit_run("running", message="training")
        while self.progress.step < self.total_steps:
            epoch = self.progress.step // spe
            batches = epoch_batches(self.items, t.batch_size, t.seed, epoch)
            while self.progress.step < self.total_steps and self.progress.step // spe == epoch:
                k = self.progress.step % spe
                self._step(batches[k * t.grad_accum:(k + 1) * t.grad_accum])
                step = self.progress.step
                requests = ctx.take_requests()
                if "sample" in requests:
                    self._samples()
                if ctx.should_stop:
                    self._checkpoint()
                    message = (f"stopped at step {step}/{self.total_steps}; resume with `zchar train "
                               f"{self.project.root} --resume`")
                    self._emit_run("stopped", message=message)
                    return {"stopped": True, "message": message, "run": self.run_name, "step": step}
                if "save" in requests or (t.checkpoint_every and step % t.checkpoint_every == 0):
                    self._checkpoint()
            done_epoch = epoch + 1
            if self.progress.step % spe == 0 and self.progress.step < self.total_steps:
                if t.checkpoint_each_epoch:
                    self._checkpoint()
                every = self.s.validation.every_epochs
                if every and done_epoch % every == 0:
                    self._samples()
                self._emit_run("running", message=f"epoch {done_epoch}/{self.total_epochs} done")
        return self._finish()

    def _step(self, micro_batches: list[list[int]]) -> None:
        import torch

        from engine.train_step import effective_lr, flow_loss

        t, p = self.t, self.progress
        start = time.perf_counter()
        total = 0.0
        for mb, batch in enumerate(micro_batches):
            gen = torch.Generator().manual_seed(_micro_seed(t.seed, p.step, mb))
            latents, captions = self._batch(batch, gen)
            loss = flow_loss(self.transformer, latents, captions, gen, self.device, self.dtype)
            (loss / len(micro_batches)).backward()
            total += float(loss.detach()) / len(micro_batches)
        max_norm = t.max_grad_norm if t.max_grad_norm > 0 else float("inf")
        grad_norm = float(torch.nn.utils.clip_grad_norm_(self.lora_params, max_norm))
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - start
        p.step += 1
        p.last_loss = total
        p.loss_ema = SMOOTHING * p.loss_ema + (1 - SMOOTHING) * total
        p.ema_weight = SMOOTHING * p.ema_weight + (1 - SMOOTHING)
        self.sec_per_step = elapsed if self.sec_per_step is None else 0.8 * self.sec_per_step + 0.2 * elapsed
        eta = self.sec_per_step * (self.total_steps - p.step)
        peak = torch.cuda.max_memory_allocated() / 2**30 if self.device.startswith("cuda") else None
        epoch = self._epoch()
        self.ctx.emit(protocol.EV_METRIC, {
            "run": self.run_name, "step": p.step, "epoch": epoch, "loss": total,
            "loss_smooth": p.loss_ema / p.ema_weight, "lr": effective_lr(self.optimizer), "grad_norm": grad_norm,
            "sec_per_step": elapsed, "peak_mem": peak, "total_steps": self.total_steps,
            "total_epochs": self.total_epochs, "eta_s": eta, "t": time.time()})
        self.ctx.progress(p.step, self.total_steps, f"step {p.step}/{self.total_steps}, loss {total:.4f}", eta)

    def _batch(self, batch: list[int], gen: Any) -> tuple[list[Any], list[Any]]:
        """Cached latents and caption embeddings of one micro-batch, with flip and caption dropout drawn from gen."""
        import torch

        latents, captions = [], []
        for i in batch:
            flip = self.t.flip and bool(torch.rand(1, generator=gen) < 0.5)
            drop = bool(torch.rand(1, generator=gen) < self.t.caption_dropout)
            latents.append(self.feats.latents[(i, flip)])
            captions.append(self.feats.text["" if drop else self.items[i].caption])
        return latents, captions

    def _finish(self) -> dict[str, Any]:
        from engine import lora_io
        from engine.train_step import ADAPTER

        step, epoch = self.progress.step, self.total_epochs
        path = self.project.loras_dir / f"{self.s.lora_name}.safetensors"
        export_dtype = self.dtype if self.device.startswith("cuda") else None
        with self._disk("the LoRA file"):
            lora_io.save_lora(path, lora_io.comfy_state_dict(self.transformer, ADAPTER, export_dtype),
                              self._metadata(step, epoch))
        self._checkpoint()  # a no-op when this step has one already
        self._samples()
        rel = str(path.relative_to(self.project.root))
        message = f"done: {step} steps, {epoch} epoch(s), loss {self.progress.last_loss:.4f}; LoRA {rel}"
        self._emit_run("done", message=message, lora=rel)
        return {"run": self.run_name, "lora": rel, "steps": step, "epochs": epoch, "message": message}

    # --- run name, resume -----------------------------------------------------------------------------------------
    def _choose_run(self) -> Path | None:
        """Set the run name; return the checkpoint folder to resume from (None: a fresh start)."""
        from engine.train_checkpoint import complete_checkpoints, latest_run, remove_leftovers

        run = self.params.get("run")
        resume = bool(self.params.get("resume")) or self.ctx.attempts > 0
        if run is None and resume:
            run = latest_run(self.project)
            if run is None:
                raise JobFailed(f"nothing to resume: no complete checkpoint in {checkpoints_root(self.project)}; "
                                "start a new run instead")
        run = run or time.strftime("run-%Y%m%d-%H%M%S")
        self.run_name = run
        run_dir = checkpoints_root(self.project) / run
        remove_leftovers(run_dir)
        ckpts = complete_checkpoints(run_dir)
        if not resume:
            if ckpts:
                raise JobFailed(f"run {run} already has checkpoints (last at step {ckpts[-1][0]}); resume it "
                                "or start a run with another name")
            return None
        if ckpts:
            return ckpts[-1][1]
        if self.params.get("resume") and not self.ctx.attempts:
            raise JobFailed(f"run {run} has no complete checkpoint to resume from")
        return None  # re-run after a crash before the first checkpoint: start over

    def _has_history(self) -> bool:
        return (checkpoints_root(self.project) / self.run_name).exists() or (
            self.project.samples_dir / self.run_name).exists()

    def _read_resume_state(self, folder: Path) -> dict[str, Any]:
        from engine.train_checkpoint import read_state

        state = read_state(folder)
        if state is None:
            raise JobFailed(f"checkpoint {folder.name} of run {self.run_name} is incomplete")
        old, new = _flatten(state.get("config", {})), _flatten(self._config())
        changed = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
        blocking = [k for k in changed if k in INCOMPATIBLE]
        if blocking:
            raise JobFailed("cannot resume run {}: {} changed since its checkpoint ({}); set {} back or start a "
                            "new run".format(self.run_name, ", ".join(blocking),
                                             ", ".join(f"{k} was {old.get(k)!r}" for k in blocking),
                                             "it" if len(blocking) == 1 else "them"))
        notes = [f"{k}: {old.get(k)!r} → {new.get(k)!r}" for k in changed]
        if state.get("dataset_hash") != self.dataset_hash:
            notes.append("the dataset (images, captions or exclusions) changed")
        if notes:
            self.ctx.log(f"resuming run {self.run_name} with changes since step {state['step']}: "
                         + "; ".join(notes), "warning")
        return state

    def _restore(self, folder: Path, state: dict[str, Any]) -> None:
        import torch

        from engine.lora_io import EXPORT_PREFIX, lora_layers
        from engine.train_checkpoint import load_files, load_optimizer_state, restore_rng
        from engine.train_step import ADAPTER

        try:
            files = load_files(folder)
            lora = files[state["lora_file"]]
        except Exception as exc:  # safetensors raises its own error type for a damaged file
            raise JobFailed(f"checkpoint {folder.name} of run {self.run_name} cannot be read ({exc}); move it out "
                            f"of {folder.parent} to resume from the one before") from None
        with torch.no_grad():
            for name, layer in lora_layers(self.transformer, ADAPTER).items():
                for part in ("lora_A", "lora_B"):
                    weight = getattr(layer, part)[ADAPTER].weight
                    weight.copy_(lora[f"{EXPORT_PREFIX}{name}.{part}.weight"])
        load_optimizer_state(self.optimizer, self.param_names, files["optimizer.safetensors"], state["optimizer"])
        restore_rng(files["rng.safetensors"], state["rng"])
        self.progress = Progress(**state["progress"])
        self.last_checkpoint = self.progress.step
        self.ctx.emit(protocol.EV_REWIND, {"run": self.run_name, "step": self.progress.step})
        self.ctx.log(f"resumed run {self.run_name} from step {self.progress.step}")

    # --- outputs ------------------------------------------------------------------------------------------------
    def _checkpoint(self) -> None:
        from safetensors.torch import save

        from engine import lora_io
        from engine import train_checkpoint as tc
        from engine.train_step import ADAPTER

        step, epoch = self.progress.step, self._epoch()
        if self.last_checkpoint == step:
            return
        run_dir = checkpoints_root(self.project) / self.run_name
        lora_file = tc.lora_file_name(self.s.lora_name, step)
        opt_tensors, opt_scalars = tc.optimizer_state(self.optimizer, self.param_names)
        rng_tensors, rng_scalars = tc.rng_state()
        files = {
            lora_file: lora_io.lora_bytes(lora_io.comfy_state_dict(self.transformer, ADAPTER),
                                          self._metadata(step, epoch)),
            "optimizer.safetensors": save(opt_tensors),
            "rng.safetensors": save(rng_tensors),
        }
        state = {"version": __version__, "run": self.run_name, "step": step, "epoch": epoch,
                 "progress": dataclasses.asdict(self.progress), "lora_file": lora_file, "optimizer": opt_scalars,
                 "rng": rng_scalars, "config": self._config(), "dataset_hash": self.dataset_hash}
        with self._disk(f"checkpoint step {step}"):
            folder = tc.write_checkpoint(run_dir, step, files, state)
        self.last_checkpoint = step
        rel = str(folder.relative_to(self.project.root))
        self.ctx.emit(protocol.EV_CHECKPOINT, {"run": self.run_name, "step": step, "epoch": epoch, "path": rel,
                                               "loss": self.progress.last_loss, "pinned": self.ctx.pinned(folder)})
        for removed in tc.prune(run_dir, self.t.keep_checkpoints, self.ctx.pinned):
            self.ctx.emit(protocol.EV_CHECKPOINT_REMOVED, {"run": self.run_name, "step": removed})

    def _samples(self) -> None:
        step, epoch = self.progress.step, self._epoch()
        self.ctx.progress(step, self.total_steps, f"making validation samples at step {step}",
                          None if self.sec_per_step is None else self.sec_per_step * (self.total_steps - step))
        out_dir = self.project.samples_dir / self.run_name
        with self._disk("validation samples"):
            made = self.sampler.make(self.transformer, out_dir, step, epoch)
        for sample in made:
            self.ctx.emit(protocol.EV_SAMPLE, {"run": self.run_name, "epoch": epoch, "step": step,
                                               "prompt_index": sample.prompt_index, "seed": sample.seed,
                                               "prompt": sample.prompt,
                                               "path": str(sample.path.relative_to(self.project.root))})

    def _load_vae(self) -> Any:
        from engine.models import load_components

        self.ctx.loading("vae", 0, 1, "loading the VAE for validation samples")
        vae = load_components(self.s.model, ["vae"], self.dtype, progress=self.ctx.loading)["vae"]
        self.ctx.loading("vae", 1, 1, "VAE loaded")
        return vae

    def _metadata(self, step: int, epoch: int) -> dict[str, Any]:
        s = self.s
        return {"trigger": s.trigger, "base_model": s.model.base, "rank": self.t.rank, "alpha": self.t.alpha,
                "steps": step, "epochs": epoch, "resolution": self.t.resolution,
                "dataset_hash": self.dataset_hash, "run": self.run_name,
                "training_adapter": s.model.training_adapter if self.turbo_merged else "",
                "name": s.lora_name}

    def _config(self) -> dict[str, Any]:
        full = settings_to_dict(self.s)
        return {k: full[k] for k in TRACKED}

    def _epoch(self) -> int:
        """The epoch (1-based) that the last step belongs to."""
        return max(1, -(-self.progress.step // max(1, self.steps_per_epoch)))

    def _emit_run(self, state: str, **fields: Any) -> None:
        p = self.progress
        self.ctx.emit(protocol.EV_RUN, {
            "name": self.run_name, "state": state, "job_id": getattr(self.ctx, "job_id", None), "step": p.step,
            "total_steps": self.total_steps, "epoch": self._epoch() if p.step else 0,
            "total_epochs": self.total_epochs, **fields})

    def _merge_training_adapter(self, transformer: Any) -> bool:
        from engine import train_adapter

        path = train_adapter.resolve(self.s.model, self.project.root, self.ctx.loading)
        if path is None:
            if self.s.model.turbo and self.s.model.base != "tiny":
                self.ctx.log("training on Turbo without a training adapter: its 8-step ability may erode "
                             "(set model.training_adapter)", "warning")
            return False
        self.ctx.loading("training_adapter", 0, 1, f"merging the training adapter {path.name}")
        n = train_adapter.merge(transformer, path)
        self.ctx.loading("training_adapter", 1, 1, f"training adapter merged into {n} layers")
        return True

    # --- failures -----------------------------------------------------------------------------------------------
    def _kept(self) -> str:
        if self.last_checkpoint is None:
            return "no checkpoint had been written yet"
        return f"the last checkpoint (step {self.last_checkpoint}) is kept"

    def _oom_message(self) -> str:
        from engine.train_memory import next_mode_hint

        return (f"CUDA ran out of memory at step {self.progress.step + 1} (memory mode {self.t.memory!r}, "
                f"{self.t.resolution}px, batch {self.t.batch_size}, rank {self.t.rank}); {self._kept()}; "
                f"{next_mode_hint(self.t.memory)} and resume with `zchar train {self.project.root} --resume`")

    def _disk_message(self, exc: BaseException) -> str:
        what = getattr(exc, "zchar_what", "training output")
        return f"the disk is full writing {what}; nothing half-written was kept and {self._kept()}; free some " \
               "space and resume"

    @contextlib.contextmanager
    def _disk(self, what: str) -> Iterator[None]:
        try:
            yield
        except OSError as exc:
            if is_disk_full(exc):
                exc.zchar_what = what  # type: ignore[attr-defined]
            raise

    def _free(self) -> None:
        """Drop the model and optimizer so that the engine gets its GPU memory back after a failure."""
        from engine.train_cache import release_gpu

        for name in ("transformer", "optimizer", "lora_params", "sampler", "feats"):
            self.__dict__.pop(name, None)
        release_gpu()


def _micro_seed(seed: int, step: int, micro: int) -> int:
    digest = hashlib.sha256(f"{seed}/{step}/{micro}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out
