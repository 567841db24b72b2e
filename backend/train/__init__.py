"""Training of every stage of the starter model: ``python -m backend.train <stage>|all --config starter|tiny``.

``main(argv)`` is the entry point the CLI (``remomask train``) calls; ``run_stages`` the library API.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

__all__ = ["main", "run_stages", "STAGES"]

STAGES = ("part_tmr", "database", "vq", "mask", "residual", "length")


def _machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads, CPU"


def run_stages(stages, config: str | dict, out: str | os.PathLike,
               state_dir: str | os.PathLike | None = None, resume: bool = False, progress: bool = True) -> dict:
    """Run the given stages in the official order; returns {stage: summary}. With ``resume`` a finished stage
    (``done.json``) is skipped and an interrupted one continues from its checkpoint. Writes
    ``PROVENANCE.json`` into ``out`` after every stage."""
    from backend.train.configs import get_config
    from backend.train.common import StageState, atomic_write_json
    from backend.train.stages import STAGE_FNS, Context

    cfg = get_config(config) if isinstance(config, str) else config
    unknown = [s for s in stages if s not in STAGE_FNS]
    if unknown:
        raise ValueError(f"unknown stage(s) {unknown}; known: {', '.join(STAGES)} or 'all'")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    state_dir = Path(state_dir) if state_dir is not None else out / ".train"
    ctx = Context(cfg, out, state_dir, resume, progress)
    prov_path = out / "PROVENANCE.json"
    prov = json.loads(prov_path.read_text()) if prov_path.is_file() else {}
    if prov.get("config", {}).get("name") != cfg["name"]:
        prov = {}
    prov.update({"config": cfg, "machine": _machine(),
                 "corpus": {**cfg["corpus"], "generator": "backend.synthetic"
                            + (" + backend.mocap (real motion read at training time, never stored)"
                               if cfg["corpus"].get("mocap") else "")}})
    prov.setdefault("started_utc", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    from backend.train.coverage_file import write_coverage

    write_coverage(out, cfg)
    gen_path = out / "generation.json"
    if cfg.get("generation"):
        atomic_write_json(gen_path, cfg["generation"])
    elif gen_path.exists():
        gen_path.unlink()
    results = {}
    for s in [s for s in STAGES if s in stages]:
        st = StageState(state_dir, s)
        if resume and st.is_done():
            results[s] = st.done_info()
            continue
        if st.done_path.exists():
            st.done_path.unlink()
        t0 = time.monotonic()
        res = STAGE_FNS[s](ctx)
        res["wall_seconds"] = round(time.monotonic() - t0, 1)
        st.mark_done(res)
        results[s] = res
        # rebuilt from every finished stage's done.json, so separate processes running different stages of
        # one model folder (part_tmr and vq are independent) do not lose each other's entries
        prov["stages"] = {k: StageState(state_dir, k).done_info() for k in STAGES
                          if StageState(state_dir, k).is_done()}
        prov["total_train_seconds"] = round(sum(v.get("wall_seconds", 0) for v in prov["stages"].values()), 1)
        prov["finished_utc"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        atomic_write_json(prov_path, prov)
        logs = out / "logs"
        if st.log_path.is_file():
            logs.mkdir(exist_ok=True)
            shutil.copyfile(st.log_path, logs / f"{s}.jsonl")
        print(f"[train] {s}: {json.dumps(res)}", file=sys.stderr, flush=True)
    return results


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m backend.train", description=__doc__)
    p.add_argument("stage", help=f"one of {', '.join(STAGES)}, or 'all'; or 'coverage': (re)write only the "
                                 "folder's coverage.json (families, example prompts, words), no training; or "
                                 "'ship': remove the real-motion entries of the folder's retrieval database (with "
                                 "--stand-ins, add stand-ins made without them); or 'reading': (re)write the "
                                 "folder's caption bank (reading.json, reading.npy; backend/train/reading_bank.py)")
    p.add_argument("--config", default=None, help="tiny | starter (default starter; for 'coverage' the "
                                                  "folder's PROVENANCE.json config)")
    p.add_argument("--out", required=True, help="model folder to write (the shipped starter, backend/starter, "
                                                 "only together with --overwrite)")
    p.add_argument("--overwrite", action="store_true", help="allow --out to be the shipped starter folder")
    p.add_argument("--state-dir", default=None, help="checkpoints and logs (default: <out>/.train)")
    p.add_argument("--resume", action="store_true", help="skip finished stages, continue an interrupted one")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 is fastest on a shared machine)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--stand-ins", action="store_true",
                   help="'ship' only: after removing the real-motion entries, add stand-ins for the captured "
                        "families (template captions and the model's own motion for them; backend/train/ship.py)")
    p.add_argument("--mocap", default=None, metavar="DIR",
                   help="add the real motion capture under DIR (../shared/data/mocap layout; see backend/mocap)")
    a = p.parse_args(argv)
    import torch

    if a.threads:
        torch.set_num_threads(a.threads)
    stages = list(STAGES) if a.stage == "all" else [a.stage]
    out = Path(a.out).expanduser()
    starter = Path(__file__).resolve().parents[1] / "starter"
    if out.resolve() == starter.resolve() and not a.overwrite:
        print(f"error: {out} is the shipped starter model; to replace it, add --overwrite", file=sys.stderr)
        return 2
    if a.stage == "coverage":
        return _coverage_main(out, a.config, a.mocap)
    if a.stage == "ship":
        return _ship_main(out, a.stand_ins, not a.no_progress)
    if a.stage == "reading":
        return _reading_main(out, not a.no_progress)
    try:
        from backend.train.configs import get_config

        cfg = get_config(a.config or "starter")
        if a.mocap:
            if not Path(a.mocap).expanduser().is_dir():
                print(f"error: --mocap: no such folder: {a.mocap}", file=sys.stderr)
                return 2
            cfg["corpus"]["mocap"] = {"dir": str(Path(a.mocap).expanduser().resolve())}
        run_stages(stages, cfg, out, a.state_dir, a.resume, not a.no_progress)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if a.stage == "all":
        record_evaluation(out)
    return 0


def _ship_main(out: Path, stand_ins: bool = False, progress: bool = True) -> int:
    from backend.generation.model_folder import ModelFolderError
    from backend.retrieval.database import DatabaseError
    from backend.train.ship import drop_captured_entries

    def report(done: int, total: int) -> None:
        if progress:
            print(f"stand-ins: {done}/{total} generated", file=sys.stderr, flush=True)

    try:
        done = drop_captured_entries(out, stand_ins=stand_ins, progress=report)
    except (ValueError, DatabaseError, ModelFolderError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    said = []
    if done["removed"]:
        said.append(f"{done['removed']} real-motion entries removed from the retrieval database")
    if done["stand_ins"]:
        said.append(f"{done['stand_ins']} stand-ins added for its captured families (template captions, the "
                    f"model's own motion for them)")
    print(f"{out}: " + ("; ".join(said) if said else "nothing to do: no real-motion entries in the retrieval "
                                                      "database" + (", and its stand-ins are in" if stand_ins
                                                                    else "")))
    return 0


def _reading_main(out: Path, progress: bool = True) -> int:
    from backend.errors import ModelError
    from backend.generation.reading import ReaderUnavailable
    from backend.train.reading_bank import write_reading

    if not (out / "coverage.json").is_file():
        print(f"error: {out} has no coverage.json (write it first: python -m backend.train coverage --out {out})",
              file=sys.stderr)
        return 2

    def report(done: int, total: int) -> None:
        if progress and (done == total or done % 320 == 0):
            print(f"checking captions: {done}/{total} motions", file=sys.stderr, flush=True)

    try:
        got = write_reading(out, report)
    except (ReaderUnavailable, ModelError, ValueError, OSError) as e:  # ModelError: a broken coverage.json too
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {out / 'reading.json'}: {got['captions']} training captions, {got['checked']} checked")
    return 0


def _coverage_main(out: Path, config: str | None, mocap: str | None) -> int:
    from backend.train.coverage_file import config_of_folder, write_coverage

    if not out.is_dir():
        print(f"error: no such model folder: {out}", file=sys.stderr)
        return 2
    try:
        path = write_coverage(out, config_of_folder(out, config, mocap))
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    fams = json.loads(path.read_text())["families"]
    print(f"wrote {path}: {len(fams)} families "
          f"({sum('captured' in f['source'] for f in fams)} with captured motion)")
    return 0


def everyday_summary(pipe, out, seeds, plain: bool = False) -> dict:
    """The everyday held-out suite (backend/train/heldout.py; with ``plain`` its second, plainer set) on a model:
    overall, per family and per prompt (only the families the model was trained on: the captured ones when its
    corpus had real motion)."""
    from backend.train.heldout import heldout_rates, heldout_suite, plain_suite

    prov = json.loads((Path(out) / "PROVENANCE.json").read_text())
    captured = bool(((prov.get("config") or {}).get("corpus") or {}).get("mocap"))
    r = heldout_rates(pipe, seeds, suite=(plain_suite if plain else heldout_suite)(captured))
    return {"action_rate": r["action_rate"], "detail_rate": r["detail_rate"], "n_motions": r["n_motions"],
            "n_detail_motions": r["n_detail_motions"], "seeds": r["seeds"], "families": r["families"],
            "prompts": {k: {"prompt": v["prompt"], "family": v["group"], "action_rate": v["action_rate"],
                            "detail_rate": v["detail_rate"]} for k, v in r["prompts"].items()}}


def record_evaluation(out, seeds=tuple(range(20))) -> dict:
    """Run the held-out retrieval and the semantic suite (suite prompts, and held-out phrasings of them) on
    a finished model folder and store them in its PROVENANCE.json under "evaluation". The semantic suites measure
    single draws (``SEMANTIC_CANDIDATES``; they are 640 motions), the everyday sets the folder's own sampling."""
    from backend.generation.model_folder import load_pipeline
    from backend.train.common import atomic_write_json
    from backend.train.evaluate import HELDOUT_SUITE, SEMANTIC_CANDIDATES, retrieval_eval, semantic_suite

    out = Path(out)
    pipe = load_pipeline(out)

    def run(suite):
        return {k: {"prompt": v["prompt"], "pass_rate": v["pass_rate"], "values": v["values"]}
                for k, v in semantic_suite(pipe, seeds, suite=suite).items()}

    ev = {"retrieval": retrieval_eval(out), "semantic": run(None), "semantic_heldout": run(HELDOUT_SUITE),
          "semantic_candidates": SEMANTIC_CANDIDATES,
          "seeds": list(seeds), "sampling": dict(pipe.sampling), "reading": pipe.info.get("reading"),
          "heldout_everyday": everyday_summary(pipe, out, seeds[:10]),
          "heldout_plain": everyday_summary(pipe, out, seeds[:10], plain=True)}
    prov_path = out / "PROVENANCE.json"
    prov = json.loads(prov_path.read_text())
    prov["evaluation"] = ev
    atomic_write_json(prov_path, prov)
    return ev
