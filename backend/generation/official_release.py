"""The official ReMoMask release: find, describe and load it (no unpickling of arbitrary objects).

Layout (the unzipped release, at any depth under ``models_dir``; e.g. ``logs/humanml3d/...`` or
``checkpoints/t2m/...``)::

    <vq_name>/opt.txt, model/net_best_fid.tar ("vq_model" or "net"), meta/mean.npy, meta/std.npy
    <mtrans_name>/opt.txt, model/net_best_fid.tar ("t2m_transformer_aux" + "t2m_transformer_ts"
                                                   or "mask_transformer_aux/ts")
    <rtrans_name>/opt.txt, model/net_best_fid.tar ("res_transformer_aux" + "res_transformer_ts")
    length_estimator/model/finest.tar ("estimator")

Every model is built from its opt.txt (plus the VQ sizes) and loaded with ``load_state_dict(strict=True)``
after dropping only ``clip_model.*`` keys (the reference drops them too). Files are read with
``torch.load(weights_only=True)``, allowing only numpy scalar/array globals.

Retrieval (Part-TMR + database) is loaded by ``backend.retrieval.retriever.load_retriever``. Turning a folder
into a pipeline (text encoders included) is ``backend.generation.model_folder.load_pipeline``'s job.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from backend.atomic import atomic_write, atomic_write_stream, atomic_write_text
from backend.errors import ModelError

from backend.models.length_estimator import LengthEstimator
from backend.models.mask_transformer import MaskTransformer, MaskTransformer2D
from backend.models.residual_transformer import ResidualTransformer, ResidualTransformer2D
from backend.models.transformer_common import TransformerConfig
from backend.models.vq import RVQVAE, VQConfig

VQ_KEYS = ("vq_model", "net")
MASK_AUX_KEYS = ("t2m_transformer_aux", "mask_transformer_aux")
MASK_TS_KEYS = ("t2m_transformer_ts", "mask_transformer_ts")
RES_AUX_KEYS = ("res_transformer_aux",)
RES_TS_KEYS = ("res_transformer_ts",)
EST_KEYS = ("estimator",)
IGNORED_PREFIXES = ("clip_model.",)


class BundleError(ModelError, RuntimeError):
    """A model folder is missing a file, has an unreadable file, or holds weights that do not fit."""


@dataclass
class Bundle:
    vq: RVQVAE
    mask_aux: MaskTransformer
    mask_ts: MaskTransformer2D
    res_aux: ResidualTransformer
    res_ts: ResidualTransformer2D
    length_estimator: LengthEstimator | None
    mean: np.ndarray
    std: np.ndarray
    retriever: Any = None
    info: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------- opt.txt
_HEADER = ("------------ Options -------------", "-------------- End ----------------")


def parse_opt(path: str | os.PathLike) -> dict:
    """Read a reference ``opt.txt`` ("key: value" lines) into a dict with bools, ints, floats and None."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise BundleError(f"cannot read {path}: {e}") from None
    out: dict[str, Any] = {}
    for line in text.splitlines():
        s = line.strip()
        if not s or s in _HEADER:
            continue
        if ": " in line:
            key, value = line.split(": ", 1)
        elif s.endswith(":"):
            key, value = s[:-1], ""
        else:
            raise BundleError(f"{path}: malformed line {line!r}")
        value = value.strip()
        if value in ("True", "False"):
            out[key] = value == "True"
        elif value == "None":
            out[key] = None
        elif re.fullmatch(r"[-+]?\d+", value):
            out[key] = int(value)
        elif re.fullmatch(r"[-+]?(\d+\.\d*|\.\d+|\d+)([eE][-+]?\d+)?", value):
            out[key] = float(value)
        else:
            out[key] = value
    return out


def write_opt(path: str | os.PathLike, opt: dict) -> None:
    lines = [_HEADER[0]] + [f"{k}: {opt[k]}" for k in sorted(opt)] + [_HEADER[1]]
    atomic_write_text(path, "\n".join(lines) + "\n")


# ---------------------------------------------------------------------------------------------- reading
def _safe_globals():
    allowed = [np.ndarray, np.dtype, np.core.multiarray.scalar, np.core.multiarray._reconstruct]
    for name in ("Float64DType", "Float32DType", "Int64DType", "Int32DType", "BoolDType"):
        t = getattr(getattr(np, "dtypes", None), name, None)
        if t is not None:
            allowed.append(t)
    return allowed


def load_checkpoint(path: str | os.PathLike) -> dict:
    """``torch.load(weights_only=True)`` on CPU with numpy scalars allowed; any failure -> BundleError."""
    path = Path(path)
    if not path.is_file():
        raise BundleError(f"missing file: {path}")
    try:
        with torch.serialization.safe_globals(_safe_globals()):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle errors, truncated zip, wrong format ...
        raise BundleError(f"cannot read {path}: {type(e).__name__}: {e}".splitlines()[0]) from None
    if not isinstance(obj, dict):
        raise BundleError(f"{path}: expected a dict of state dicts, got {type(obj).__name__}")
    return obj


def _pick(ckpt: dict, keys: tuple[str, ...], path: Path) -> tuple[str, dict]:
    for k in keys:
        if k in ckpt:
            sd = ckpt[k]
            if not isinstance(sd, dict):
                raise BundleError(f"{path}: entry {k!r} is not a state dict")
            return k, sd
    raise BundleError(f"{path}: none of the entries {list(keys)} found (has {sorted(ckpt)[:12]})")


def _strict_load(module: torch.nn.Module, sd: dict, what: str, path: Path) -> None:
    sd = {k: v for k, v in sd.items() if not k.startswith(IGNORED_PREFIXES)}
    own = module.state_dict()
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    shapes = [f"{k} {tuple(sd[k].shape)} != {tuple(own[k].shape)}" for k in own
              if k in sd and hasattr(sd[k], "shape") and tuple(sd[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shapes:
        def short(xs):
            return ", ".join(xs[:8]) + (f" ... (+{len(xs) - 8})" if len(xs) > 8 else "")
        parts = []
        if missing:
            parts.append(f"missing keys: {short(missing)}")
        if unexpected:
            parts.append(f"keys it could not use: {short(unexpected)}")
        if shapes:
            parts.append(f"shape mismatches: {short(shapes)}")
        raise BundleError(f"{path} [{what}] does not fit the model built from opt.txt: " + "; ".join(parts))
    module.load_state_dict(sd, strict=True)


# ---------------------------------------------------------------------------------------------- discovery
def _find_dirs(models_dir: Path) -> dict:
    """Map each folder holding an opt.txt to its parsed options (depth <= 5)."""
    found = {}
    base_depth = len(models_dir.parts)
    for root, dirs, files in os.walk(models_dir):
        depth = len(Path(root).parts) - base_depth
        if depth >= 5:
            dirs[:] = []
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        if "opt.txt" in files:
            found[Path(root)] = parse_opt(Path(root) / "opt.txt")
    return found


def _kind(opt: dict, folder: Path) -> str:
    """vq / mtrans / rtrans / other. Transformers are told apart by name, else by the checkpoint's entries
    (both kinds write the same option keys)."""
    if "latent_dim" not in opt and ("nb_code2d" in opt or "code_dim2d" in opt):
        return "vq"
    if "latent_dim" not in opt:
        return "other"
    name = f"{opt.get('name', '')} {folder.name}".lower()
    if "rtrans" in name:
        return "rtrans"
    if "mtrans" in name:
        return "mtrans"
    ck = folder / "model" / "net_best_fid.tar"
    if ck.is_file():
        try:
            keys = load_checkpoint(ck).keys()
        except BundleError:
            return "other"
        if any(k in keys for k in RES_TS_KEYS):
            return "rtrans"
        if any(k in keys for k in MASK_TS_KEYS):
            return "mtrans"
    return "other"


def _find_estimator(models_dir: Path) -> Path | None:
    for root, dirs, files in os.walk(models_dir):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        p = Path(root)
        if p.name == "model" and p.parent.name == "length_estimator" and "finest.tar" in files:
            return p / "finest.tar"
    return None


def locate(models_dir: str | os.PathLike) -> dict:
    """Find the VQ, mask- and residual-transformer folders and the length estimator (no weights loaded)."""
    models_dir = Path(models_dir)
    if not models_dir.is_dir():
        raise BundleError(f"model folder does not exist: {models_dir}")
    dirs = _find_dirs(models_dir)
    kinds: dict[str, list[Path]] = {"vq": [], "mtrans": [], "rtrans": []}
    for d, opt in sorted(dirs.items()):
        k = _kind(opt, d)
        if k in kinds:
            kinds[k].append(d)
    if not kinds["mtrans"]:
        raise BundleError(f"no masked-transformer folder (opt.txt + model/net_best_fid.tar with "
                          f"t2m_transformer_ts) under {models_dir}")
    if not kinds["rtrans"]:
        raise BundleError(f"no residual-transformer folder (opt.txt + model/net_best_fid.tar with "
                          f"res_transformer_ts) under {models_dir}")
    mdir = kinds["mtrans"][0]
    mopt = dirs[mdir]
    vq_name = mopt.get("vq_name")
    vdir = mdir.parent / str(vq_name) if vq_name else None
    if vdir is None or vdir not in dirs:
        cands = [d for d in kinds["vq"]]
        if not cands:
            raise BundleError(f"no VQ folder (opt.txt with nb_code2d) named {vq_name!r} next to {mdir}")
        vdir = cands[0]
    rdir = kinds["rtrans"][0]
    return {"models_dir": models_dir, "vq": vdir, "mtrans": mdir, "rtrans": rdir,
            "vq_opt": dirs[vdir], "mtrans_opt": mopt, "rtrans_opt": dirs[rdir],
            "estimator": _find_estimator(models_dir)}


# ---------------------------------------------------------------------------------------------- configs
def vq_config(opt: dict) -> VQConfig:
    ds = str(opt.get("dataset_name", "humanml3d"))
    if ds not in ("humanml3d", "t2m"):
        raise BundleError(f"VQ dataset {ds!r} is not supported (HumanML3D 22 joints only)")
    return VQConfig(code_dim1d=int(opt.get("code_dim1d", 512)), nb_code1d=int(opt.get("nb_code1d", 512)),
                    code_dim2d=int(opt.get("code_dim2d", 512)), nb_code2d=int(opt.get("nb_code2d", 512)),
                    num_quantizers=int(opt.get("num_quantizers", 3)), down_t=int(opt.get("down_t", 2)),
                    stride_t=int(opt.get("stride_t", 2)), width=int(opt.get("width", 512)),
                    depth=int(opt.get("depth", 3)), dilation_growth_rate=int(opt.get("dilation_growth_rate", 3)),
                    activation=str(opt.get("vq_act", "relu")), norm=opt.get("vq_norm"),
                    shared_codebook=bool(opt.get("shared_codebook", False)))


def transformer_config(opt: dict, vq: VQConfig, branch: str, residual: bool, clip_dim: int = 512,
                       project_cond: bool | None = None) -> TransformerConfig:
    return TransformerConfig(
        code_dim=vq.code_dim1d if branch == "aux" else vq.code_dim2d,
        num_tokens=vq.nb_code1d if branch == "aux" else vq.nb_code2d,
        latent_dim=int(opt.get("latent_dim", 384)), ff_size=int(opt.get("ff_size", 1024)),
        num_layers=int(opt.get("n_layers", 8)), num_heads=int(opt.get("n_heads", 6)),
        dropout=float(opt.get("dropout", 0.2)), clip_dim=clip_dim,
        attnj=bool(opt.get("attnj", False)), attnt=bool(opt.get("attnt", False)),
        project_cond=True if residual else project_cond,
        num_quantizers=vq.num_quantizers, share_weight=bool(opt.get("share_weight", False)))


def _mask_cond_mode(sd: dict, latent_dim: int) -> tuple[int, bool]:
    """(clip_dim, project_cond) for a mask transformer state dict. The released mask transformers never
    trained ``cond_emb`` (bias exactly zero) and take the 512-d text embedding directly."""
    w = sd.get("cond_emb.weight")
    b = sd.get("cond_emb.bias")
    clip_dim = int(w.shape[1]) if w is not None else 512
    unused = b is not None and bool(torch.count_nonzero(b) == 0) and clip_dim == latent_dim
    return clip_dim, not unused


def _check_ssta_layout(sd: dict, path: Path) -> None:
    keys = [k for k in sd if k.startswith("semanticTransEncoder.")]
    if not keys:
        raise BundleError(f"{path}: the ts mask transformer has no semanticTransEncoder.* (SSTA) weights")
    if any(".key_text." in k or ".key_retr." in k for k in keys):
        raise BundleError(f"{path}: SSTA weights use the older linear-attention layout (key_text/key_retr/"
                          "value_retr); only the released info_mlp/key/value/out_proj layout is supported")


# ---------------------------------------------------------------------------------------------- loading
def load_bundle(models_dir: str | os.PathLike, device: str | torch.device = "cpu", load_retrieval: bool = True,
                which_model: str = "net_best_fid.tar") -> Bundle:
    """Build and strictly load every generation model of the release in ``models_dir``."""
    loc = locate(models_dir)
    device = torch.device(device)
    info: dict[str, Any] = {"folders": {k: str(loc[k]) for k in ("vq", "mtrans", "rtrans")}}

    vcfg = vq_config(loc["vq_opt"])
    vpath = loc["vq"] / "model" / which_model
    ck = load_checkpoint(vpath)
    _, sd = _pick(ck, VQ_KEYS, vpath)
    try:
        vq = RVQVAE(vcfg)
    except ValueError as e:
        raise BundleError(f"{loc['vq'] / 'opt.txt'}: {e}") from None
    _strict_load(vq, sd, "vq_model", vpath)
    info["vq"] = {"ep": ck.get("ep"), **vcfg.to_dict()}
    del ck, sd

    meta = loc["vq"] / "meta"
    stats = []
    for n in ("mean.npy", "std.npy"):
        p = meta / n
        if not p.is_file():
            raise BundleError(f"missing file: {p}")
        try:
            a = np.load(p, allow_pickle=False).astype(np.float32)
        except Exception as e:
            raise BundleError(f"cannot read {p}: {e}") from None
        if a.shape != (vcfg.input_width,):
            raise BundleError(f"{p}: shape {a.shape}, expected ({vcfg.input_width},)")
        stats.append(a)
    mean, std = stats

    mpath = loc["mtrans"] / "model" / which_model
    ck = load_checkpoint(mpath)
    mopt = loc["mtrans_opt"]
    ka, sda = _pick(ck, MASK_AUX_KEYS, mpath)
    kt, sdt = _pick(ck, MASK_TS_KEYS, mpath)
    _check_ssta_layout(sdt, mpath)
    lat = int(mopt.get("latent_dim", 384))
    clip_a, proj_a = _mask_cond_mode(sda, lat)
    clip_t, proj_t = _mask_cond_mode(sdt, lat)
    try:
        mask_aux = MaskTransformer(transformer_config(mopt, vcfg, "aux", False, clip_a, proj_a))
        mask_ts = MaskTransformer2D(transformer_config(mopt, vcfg, "ts", False, clip_t, proj_t))
    except ValueError as e:
        raise BundleError(f"{loc['mtrans'] / 'opt.txt'}: {e}") from None
    _strict_load(mask_aux, sda, ka, mpath)
    _strict_load(mask_ts, sdt, kt, mpath)
    info["mtrans"] = {"ep": ck.get("ep"), "keys": [ka, kt], "project_cond": [proj_a, proj_t],
                      **mask_ts.cfg.to_dict()}
    del ck, sda, sdt

    rpath = loc["rtrans"] / "model" / which_model
    ck = load_checkpoint(rpath)
    ropt = loc["rtrans_opt"]
    kra, sdra = _pick(ck, RES_AUX_KEYS, rpath)
    krt, sdrt = _pick(ck, RES_TS_KEYS, rpath)
    if ropt.get("vq_name") not in (None, mopt.get("vq_name")):
        info["warning"] = f"rtrans vq_name {ropt.get('vq_name')!r} != mtrans vq_name {mopt.get('vq_name')!r}"
    clip_r = int(sdra["cond_emb.weight"].shape[1]) if "cond_emb.weight" in sdra else 512
    try:
        res_aux = ResidualTransformer(transformer_config(ropt, vcfg, "aux", True, clip_r))
        res_ts = ResidualTransformer2D(transformer_config(ropt, vcfg, "ts", True, clip_r))
    except ValueError as e:
        raise BundleError(f"{loc['rtrans'] / 'opt.txt'}: {e}") from None
    _strict_load(res_aux, sdra, kra, rpath)
    _strict_load(res_ts, sdrt, krt, rpath)
    info["rtrans"] = {"ep": ck.get("ep"), **res_ts.cfg.to_dict()}
    del ck, sdra, sdrt

    est = None
    if loc["estimator"] is not None:
        epath = loc["estimator"]
        ck = load_checkpoint(epath)
        _, sde = _pick(ck, EST_KEYS, epath)
        w0, wl = sde.get("output.0.weight"), sde.get("output.11.weight")
        est = LengthEstimator(int(w0.shape[1]) if w0 is not None else 512, int(wl.shape[0]) if wl is not None else 50,
                              hidden=int(w0.shape[0]) if w0 is not None else 512)
        _strict_load(est, sde, "estimator", epath)
        info["length_estimator"] = {"path": str(epath), "epoch": ck.get("epoch")}

    retriever = None
    if load_retrieval:
        from backend.retrieval.retriever import load_retriever

        try:
            retriever = load_retriever(models_dir, device)
        except Exception as e:
            raise BundleError(f"retrieval: {e}") from None

    models = [vq, mask_aux, mask_ts, res_aux, res_ts] + ([est] if est is not None else [])
    for mod in models:
        mod.to(device).eval()
    return Bundle(vq, mask_aux, mask_ts, res_aux, res_ts, est, mean, std, retriever, info)


def describe_bundle(models_dir: str | os.PathLike) -> dict:
    """What the release folder holds (folders, sizes from opt.txt, files and their sizes); loads no weights.
    Never raises for a broken folder: problems are listed under ``problems``."""
    out: dict[str, Any] = {"models_dir": str(models_dir), "problems": []}
    try:
        loc = locate(models_dir)
    except BundleError as e:
        out["problems"].append(str(e))
        return out
    for kind in ("vq", "mtrans", "rtrans"):
        d = loc[kind]
        opt = loc[f"{kind}_opt"]
        keys = {"vq": ("num_quantizers", "code_dim1d", "nb_code1d", "code_dim2d", "nb_code2d", "width", "down_t"),
                "mtrans": ("latent_dim", "n_heads", "n_layers", "ff_size", "attnj", "attnt", "vq_name"),
                "rtrans": ("latent_dim", "n_heads", "n_layers", "ff_size", "share_weight", "attnj", "attnt")}[kind]
        files = {}
        for rel in ["model/net_best_fid.tar"] + (["meta/mean.npy", "meta/std.npy"] if kind == "vq" else []):
            p = d / rel
            files[rel] = p.stat().st_size if p.is_file() else None
            if files[rel] is None:
                out["problems"].append(f"missing file: {p}")
        out[kind] = {"folder": str(d), "name": opt.get("name", d.name), "files": files,
                     **{k: opt.get(k) for k in keys}}
    est = loc["estimator"]
    out["length_estimator"] = {"file": str(est), "bytes": est.stat().st_size} if est else None
    if est is None:
        out["problems"].append("no length_estimator/model/finest.tar (lengths must then be given)")
    return out


# ---------------------------------------------------------------------------------------------- writing
def save_official_layout(root: str | os.PathLike, vq: RVQVAE, mask_aux: MaskTransformer, mask_ts: MaskTransformer2D,
                         res_aux: ResidualTransformer, res_ts: ResidualTransformer2D,
                         estimator: LengthEstimator | None = None, mean: np.ndarray | None = None,
                         std: np.ndarray | None = None, names=("rvq", "mtrans", "rtrans"),
                         dataset: str = "humanml3d") -> Path:
    """Write models in the official layout under ``root/checkpoints/<dataset>/`` (tests, and exporting a
    model for tools that expect the release layout). Returns that folder.

    What the reference loader reads is there: every ``opt.txt`` names ``checkpoints_dir`` (``./checkpoints``,
    relative to ``root``, as the reference runs from its repository root) and ``dataset_name`` (the folder
    name: the reference builds ``<checkpoints_dir>/<dataset_name>/<name>/model/net_best_fid.tar``, and its
    RVQ-VAE accepts only ``humanml3d``, ``kit`` or ``motionx``); the VQ checkpoint carries ``ep`` and
    ``value`` (printed on load; no FID is known for an export, so it is None), the transformers ``ep``, the
    length estimator (``checkpoints/<dataset_name>/length_estimator/model/finest.tar``) ``epoch``."""
    if dataset not in ("humanml3d", "kit", "motionx"):
        raise ValueError(f"dataset must be humanml3d, kit or motionx (the reference's names), got {dataset!r}")
    base = Path(root) / "checkpoints" / dataset
    vname, mname, rname = names
    v = vq.cfg
    common = {"checkpoints_dir": "./checkpoints", "dataset_name": dataset}
    vopt = {"name": vname, **common, "code_dim1d": v.code_dim1d, "nb_code1d": v.nb_code1d,
            "code_dim2d": v.code_dim2d, "nb_code2d": v.nb_code2d, "num_quantizers": v.num_quantizers,
            "down_t": v.down_t, "stride_t": v.stride_t, "width": v.width, "depth": v.depth,
            "dilation_growth_rate": v.dilation_growth_rate, "vq_act": v.activation, "vq_norm": v.norm,
            "shared_codebook": v.shared_codebook, "mu": 0.99, "quantize_dropout_prob": 0.2}

    def topt(name, cfg, extra):
        return {"name": name, "vq_name": vname, **common, "latent_dim": cfg.latent_dim,
                "ff_size": cfg.ff_size, "n_layers": cfg.num_layers, "n_heads": cfg.num_heads,
                "dropout": cfg.dropout, "attnj": cfg.attnj, "attnt": cfg.attnt, "cond_drop_prob": 0.1, **extra}

    def save(path, obj):
        atomic_write(path, lambda tmp: torch.save(obj, tmp))

    write_opt(base / vname / "opt.txt", vopt)
    save(base / vname / "model" / "net_best_fid.tar", {"vq_model": vq.state_dict(), "ep": 1, "total_it": 1,
                                                          "value": None})
    mean = np.zeros(v.input_width, np.float32) if mean is None else np.asarray(mean, np.float32)
    std = np.ones(v.input_width, np.float32) if std is None else np.asarray(std, np.float32)
    (base / vname / "meta").mkdir(parents=True, exist_ok=True)
    for name, arr in (("mean", mean), ("std", std)):
        atomic_write_stream(base / vname / "meta" / f"{name}.npy", lambda fh, arr=arr: np.save(fh, arr))
    write_opt(base / mname / "opt.txt", topt(mname, mask_ts.cfg, {}))
    save(base / mname / "model" / "net_best_fid.tar",
         {"t2m_transformer_aux": mask_aux.state_dict(), "t2m_transformer_ts": mask_ts.state_dict(), "ep": 1,
          "total_it": 1})
    write_opt(base / rname / "opt.txt", topt(rname, res_ts.cfg, {"share_weight": res_ts.cfg.share_weight}))
    save(base / rname / "model" / "net_best_fid.tar",
         {"res_transformer_aux": res_aux.state_dict(), "res_transformer_ts": res_ts.state_dict(), "ep": 1,
          "total_it": 1})
    if estimator is not None:
        save(base / "length_estimator" / "model" / "finest.tar", {"estimator": estimator.state_dict(), "epoch": 1,
                                                                      "niter": 1})
    return base
