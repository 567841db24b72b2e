"""Shared training machinery: resumable checkpoints, JSON-lines loss logs, a timed step loop."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Callable

import torch
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from backend.atomic import atomic_write, atomic_write_bytes, atomic_write_json


def save_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    atomic_write(path, lambda tmp: save_file({k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()},
                                             tmp))


def module_state(modules: dict[str, torch.nn.Module]) -> dict[str, torch.Tensor]:
    return {f"{name}/{k}": v for name, m in modules.items() for k, v in m.state_dict().items()}


class StageState:
    """``<state_dir>/<stage>/``: ``model.safetensors`` (all modules + extra tensors), ``optim.pt`` (optimiser
    state, step, elapsed seconds; read back with ``weights_only=True``), ``loss.jsonl`` (one line per logged
    step), ``done.json`` (written when the stage finished, with its evaluation)."""

    def __init__(self, state_dir: Path, stage: str):
        self.dir = Path(state_dir) / stage
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.dir / "loss.jsonl"

    @property
    def done_path(self) -> Path:
        return self.dir / "done.json"

    def is_done(self) -> bool:
        return self.done_path.is_file()

    def done_info(self) -> dict:
        return json.loads(self.done_path.read_text())

    def mark_done(self, info: dict) -> None:
        atomic_write_json(self.done_path, info)

    def save(self, modules: dict[str, torch.nn.Module], opt: torch.optim.Optimizer | None, step: int,
             elapsed: float, extra: dict[str, torch.Tensor] | None = None) -> None:
        t = module_state(modules)
        for k, v in (extra or {}).items():
            t[f"_extra/{k}"] = v
        save_tensors(self.dir / "model.safetensors", t)
        import io

        buf = io.BytesIO()
        torch.save({"optimizer": opt.state_dict() if opt is not None else {}, "step": int(step),
                    "elapsed": float(elapsed)}, buf)
        atomic_write_bytes(self.dir / "optim.pt", buf.getvalue())

    def has_checkpoint(self) -> bool:
        return (self.dir / "model.safetensors").is_file() and (self.dir / "optim.pt").is_file()

    def load(self, modules: dict[str, torch.nn.Module], opt: torch.optim.Optimizer | None):
        """Restore modules (strict) and the optimiser; returns (step, elapsed, extra tensors)."""
        t = load_file(str(self.dir / "model.safetensors"))
        for name, m in modules.items():
            pre = f"{name}/"
            m.load_state_dict({k[len(pre):]: v for k, v in t.items() if k.startswith(pre)}, strict=True)
        extra = {k[len("_extra/"):]: v for k, v in t.items() if k.startswith("_extra/")}
        st = torch.load(self.dir / "optim.pt", weights_only=True)
        if opt is not None and st["optimizer"]:
            opt.load_state_dict(st["optimizer"])
        return int(st["step"]), float(st["elapsed"]), extra

    def log(self, record: dict) -> None:
        with open(self.log_path, "a") as f:
            f.write(json.dumps(record) + "\n")

    def read_log(self) -> list[dict]:
        if not self.log_path.is_file():
            return []
        return [json.loads(line) for line in self.log_path.read_text().splitlines() if line.strip()]


def run_loop(state: StageState, modules: dict[str, torch.nn.Module], opt: torch.optim.Optimizer,
             step_fn: Callable[[int], dict], steps: int, minutes: float, resume: bool, desc: str,
             extra_fn: Callable[[], dict] | None = None, load_extra: Callable[[dict], None] | None = None,
             ckpt_every: int = 200, log_every: int = 10, warmup: int = 50, progress: bool = True,
             final_lr: float = 0.05) -> dict:
    """Run ``step_fn(step) -> {"loss": float, ...}`` until ``steps`` or the ``minutes`` budget (counting
    time already spent before a resume). Linear LR warm-up, then a cosine decay to ``final_lr`` times the
    base rate over whichever of the two limits is nearer (so a time-budgeted run still ends annealed). Checkpoints every ``ckpt_every`` steps and at
    the end. Returns {"steps", "seconds", "first_loss", "last_loss"}."""
    step, elapsed = 0, 0.0
    if resume and state.has_checkpoint():
        step, elapsed, extra = state.load(modules, opt)
        if load_extra is not None:
            load_extra(extra)
    elif state.log_path.exists():
        state.log_path.unlink()
    base_lr = [g["lr"] for g in opt.param_groups]
    budget = minutes * 60.0
    t0 = time.monotonic() - elapsed
    bar = tqdm(total=steps, initial=step, desc=desc, disable=not progress, mininterval=5.0, leave=False)
    window: list[float] = []
    for m in modules.values():
        m.train()
    while step < steps and (time.monotonic() - t0) < budget:
        frac = min(1.0, max(step / max(steps, 1), (time.monotonic() - t0) / max(budget, 1e-9)))
        scale = min(1.0, (step + 1) / warmup) * (final_lr + (1 - final_lr) * 0.5 * (1 + math.cos(math.pi * frac)))
        for g, lr in zip(opt.param_groups, base_lr):
            g["lr"] = lr * scale
        rec = step_fn(step)
        step += 1
        window.append(float(rec["loss"]))
        if step % log_every == 0 or step == 1 or step == steps:
            state.log({"step": step, "time": round(time.monotonic() - t0, 2),
                       **{k: float(v) for k, v in rec.items()}})
        if step % ckpt_every == 0:
            state.save(modules, opt, step, time.monotonic() - t0, extra_fn() if extra_fn else None)
        bar.update(1)
        if step % log_every == 0:
            bar.set_postfix(loss=f"{sum(window) / len(window):.4f}")
            window = []
    bar.close()
    for g, lr in zip(opt.param_groups, base_lr):
        g["lr"] = lr
    seconds = time.monotonic() - t0
    state.save(modules, opt, step, seconds, extra_fn() if extra_fn else None)
    log = state.read_log()
    for m in modules.values():
        m.eval()
    return {"steps": step, "seconds": round(seconds, 1),
            "first_loss": log[0]["loss"] if log else None, "last_loss": log[-1]["loss"] if log else None}
