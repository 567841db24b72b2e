"""Prompt -> motion: text embedding, retrieval, length, masked + residual transformers, RVQ decode, joints.

Each prompt x sample of a request is sampled on its own, under ``torch.inference_mode``, with every random draw
taken from its own ``torch.Generator`` (``row_generator``: the request's seed, the sample's index, the part of a
composed prompt): a prompt with a seed gives the same motion on a given device whatever else the request asks
for (alone, in a batch of prompts, in the Ray service's batches).
"""

from __future__ import annotations

from typing import Callable, Protocol, Sequence

import numpy as np
import torch

from backend.errors import InvalidInput
from backend.generation.coverage import Coverage
from backend.generation.sample import MAX_FRAMES, UNIT_LENGTH, GeneratedSample
from backend.models.mask_transformer import GenerationCancelled
from backend.models.sampling import row_generator
from backend.motion.features import features_to_joints

__all__ = ["Pipeline", "GeneratedSample", "GenerationCancelled", "TextEncoderLike", "MAX_FRAMES", "UNIT_LENGTH"]

# Sampling settings used when a request leaves them out (None). A model folder may recommend its own in
# ``generation.json`` (see backend/generation/project_weights.py); these are the official release's.
# ``compose_sequences``: generate a sequential prompt ("..., then ...") part by part and join the parts
# (backend.generation.prompt_parts, backend.motion.compose); off for the official release, which learned such captions.
SAMPLING_DEFAULTS = {"cond_scale": 4.0, "time_steps": 10, "temperature": 1.0, "topk": 0.9, "res_cond_scale": 5.0,
                     "compose_sequences": False, "candidates": 1, "repeat_counts": ()}
# ``repeat_counts`` (with ``compose_sequences``): verbs (base forms) whose counted prompts ("jumps 3 times", "two
# quick jumps", "squats twice") are generated as that many parts of one ("jumps once"), joined like a sequence
# (backend.generation.prompt_parts.repeat_parts): for a model that makes one of an action reliably and a count not.
# ``candidates``: each motion is the best of this many draws, as the model's own Part-TMR scores them against
# the prompt (``_best_of``); 1 = no re-ranking. Needs the retrieval model; costs that many times the sampling.
MAX_CANDIDATES = 64
# A prompt this close (text-embedding cosine) to an example prompt of a captured-only family is not "far": measured
# on the starter, 22 of the 35 held-out real-family prompts of backend/mocap/heldout.py reach 0.82-0.98 with their own
# family's examples, while ten prompts about things it never learnt (violin, yoga, swimming, ...) reach at most
# 0.78 with a captured family's (README "What the model knows").
EXAMPLE_SIMILARITY = 0.8
BLEND_TOKENS = 2  # parts of a composed motion cross-fade over 2 tokens = 8 frames
MIN_PART_TOKENS = 3  # a part shorter than this is not worth a part: the prompt is generated whole


class TextEncoderLike(Protocol):
    dim: int

    def encode(self, texts: list[str]) -> torch.Tensor: ...


def _unit(x) -> np.ndarray:
    """Rows of a (B, D) tensor or array as float32 unit vectors."""
    x = np.asarray(torch.as_tensor(x).detach().float().cpu(), np.float32)
    return x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-8)


def _features_to_joints(features: np.ndarray) -> np.ndarray:
    return np.asarray(features_to_joints(features), dtype=np.float32)


class Pipeline:
    """Holds the loaded models, the text encoder, the retriever (or None) and the normaliser.

    ``models``: anything with attributes ``vq, mask_aux, mask_ts, res_aux, res_ts, length_estimator`` (may
    be None when lengths are always given), ``mean``, ``std`` (263,) — e.g. a :class:`backend.generation.official_release.Bundle`.
    ``text_encoder``: ``encode(list[str]) -> (B, dim)`` used to condition the transformers.
    ``length_text_encoder``: optional separate encoder for the length estimator (defaults to ``text_encoder``).
    ``retriever``: ``retriever(texts, k=1)`` returning an object with ``re_dict`` (``re_text``/``re_motion``
    (B,k,1,D)), ``ids`` and ``captions``; None disables retrieval.
    """

    def __init__(self, models, text_encoder: TextEncoderLike, retriever=None, length_text_encoder=None,
                 device: str | torch.device | None = None, sampling: dict | None = None):
        unknown = set(sampling or {}) - set(SAMPLING_DEFAULTS)
        if unknown:
            raise ValueError(f"unknown sampling setting(s) {sorted(unknown)}; known: {', '.join(SAMPLING_DEFAULTS)}")
        self.sampling = {**SAMPLING_DEFAULTS, **(sampling or {})}
        self.models = models
        self.text_encoder = text_encoder
        self.length_text_encoder = length_text_encoder or text_encoder
        self.retriever = retriever
        # Set by backend.generation.model_folder.load_pipeline: what hello / `remomask info` report, and why retrieval
        # is unavailable (None when it is, or when it was not asked for).
        self.info: dict = {}
        self.retrieval_note: str | None = None
        self.coverage = Coverage()  # what the model knows (backend.generation.coverage); set by the loader
        self.reader = None  # the model folder's caption bank (backend.generation.reading); set by the loader
        self._scorer_cache = None  # _scorer: the Part-TMR embedder (False: none)
        self._examples_cache = (None, None)  # _near_captured_examples: (coverage, its examples' embeddings)
        self.device = torch.device(device) if device is not None else next(models.vq.parameters()).device
        for name in ("vq", "mask_aux", "mask_ts", "res_aux", "res_ts", "length_estimator"):
            m = getattr(models, name, None)
            if m is not None:
                m.to(self.device).eval()
        self.mean = torch.as_tensor(np.asarray(models.mean, dtype=np.float32), device=self.device)
        self.std = torch.as_tensor(np.asarray(models.std, dtype=np.float32), device=self.device)
        clip_dim = models.mask_aux.cfg.clip_dim
        if getattr(text_encoder, "dim", clip_dim) != clip_dim:
            raise ValueError(f"text encoder gives {text_encoder.dim}-d embeddings, the transformers expect {clip_dim}")

    # ------------------------------------------------------------------------------------------------
    def _check(self, prompts, lengths, samples):
        if isinstance(prompts, str) or not isinstance(prompts, Sequence) or not prompts:
            raise InvalidInput("prompts must be a non-empty list of strings")
        if not all(isinstance(p, str) and p.strip() for p in prompts):
            raise InvalidInput("every prompt must be a non-empty string")
        if not isinstance(samples, int) or samples < 1:
            raise InvalidInput("samples must be a positive integer")
        if lengths is None:
            if self.models.length_estimator is None:
                raise InvalidInput("no length estimator loaded: give lengths")
            return None
        if len(lengths) != len(prompts):
            raise InvalidInput(f"{len(lengths)} lengths for {len(prompts)} prompts")
        toks = []
        for n in lengths:
            if not isinstance(n, (int, np.integer)) or not UNIT_LENGTH <= int(n) <= MAX_FRAMES:
                raise InvalidInput(f"length {n!r} must be an integer number of frames in [{UNIT_LENGTH}, {MAX_FRAMES}]")
            toks.append(int(n) // UNIT_LENGTH)
        return toks

    def _encode(self, encoder, prompts):
        emb = encoder.encode(list(prompts))
        emb = torch.as_tensor(emb).to(self.device, torch.float32)
        if emb.shape[0] != len(prompts):
            raise RuntimeError("text encoder returned a wrong batch size")
        return emb

    @torch.inference_mode()
    def generate(self, prompts: list[str], lengths: list[int] | None = None, seed: int = 0, samples: int = 1,
                 cond_scale: float | None = None, time_steps: int | None = None, temperature: float | None = None,
                 topk: float | None = None, use_retrieval: bool = True,
                 progress: Callable[[str, float], None] | None = None, cancelled: Callable[[], bool] | None = None,
                 res_cond_scale: float | None = None, compose_sequences: bool | None = None,
                 candidates: int | None = None, literal: bool = False) -> list[GeneratedSample]:
        """Generate ``samples`` motions for each prompt. ``lengths`` in frames (rounded down to a multiple of 4),
        or None to sample them from the length estimator. Settings left at None take the model's
        (``self.sampling``). Raises :class:`GenerationCancelled` when ``cancelled()`` turns True (checked
        between steps). Each motion is sampled and decoded on its own, from its own generator
        (``row_generator``), so it does not depend on the other prompts or samples of the request.

        With ``compose_sequences`` "X while Y" is generated as X followed by a body-part edit of the arms with Y
        (``backend.editing.tasks.while_``), and a prompt such as "a person walks forward, then waves" as its
        parts ("a person walks forward", "a person waves"; ``backend.generation.prompt_parts.split_sequence``),
        each part from its own generator, and the parts are joined into one motion (8-frame cross-fades,
        ``backend.motion.compose``).
        A given length is shared evenly by the parts; otherwise each part's length comes from the estimator
        (scaled down when the whole would pass 196 frames).

        With ``candidates`` > 1 every motion (every part of a composed one) is drawn that many times and the
        draw whose Part-TMR motion embedding is closest to the prompt's text embedding is kept
        (``_best_of``).

        With a caption bank in the model folder (``self.reader``, ``backend.generation.reading``) each sentence
        is read in the model's training words unless ``literal``: conditioned on the mean text embedding of the
        closest checked training captions of its action with the same details, and reported as "read ...
        as ..." in the motion's warnings."""
        original = list(prompts)
        fixed = [self.coverage.corrected(p) for p in original]  # misspellings, for a closed-vocabulary model
        if any(f for _, f in fixed):
            out = self.generate([t for t, _ in fixed], lengths, seed, samples, cond_scale, time_steps, temperature,
                                topk, use_retrieval, progress, cancelled, res_cond_scale, compose_sequences,
                                candidates, literal)
            back: dict[str, list] = {}  # two prompts may read the same once corrected: hand them back in order
            for p, (t, f) in zip(original, fixed):
                back.setdefault(t, []).extend([(p, f)] * samples)
            for s in out:
                q = back.get(s.prompt)
                p, f = q.pop(0) if q else (s.prompt, [])
                s.prompt = p
                if f:
                    s.warnings = ["read " + ", ".join(f"{a!r} as {b!r}" for a, b in f)] + list(s.warnings or [])
            return out
        given = {"cond_scale": cond_scale, "time_steps": time_steps, "temperature": temperature, "topk": topk,
                 "res_cond_scale": res_cond_scale, "compose_sequences": compose_sequences}
        sp = {k: self.sampling[k] if v is None else v for k, v in given.items()}
        tok_given = self._check(prompts, lengths, samples)
        if sp["time_steps"] < 1:
            raise InvalidInput("time_steps must be >= 1")
        n_cand = self.sampling["candidates"] if candidates is None else candidates
        if isinstance(n_cand, bool) or not isinstance(n_cand, (int, np.integer)) or not 1 <= n_cand <= MAX_CANDIDATES:
            raise InvalidInput(f"candidates must be an integer from 1 to {MAX_CANDIDATES}")
        args = dict(seed=seed, samples=samples, cond_scale=sp["cond_scale"], time_steps=sp["time_steps"],
                    temperature=sp["temperature"], topk=sp["topk"], res_cond_scale=sp["res_cond_scale"],
                    use_retrieval=use_retrieval, progress=progress, cancelled=cancelled, candidates=int(n_cand))
        plans = [[p] for p in prompts]
        if sp["compose_sequences"]:
            from backend.editing.tasks import generate_prompts, split_while
            from backend.generation.prompt_parts import split_sequence

            plans = [split_sequence(p, self.sampling["repeat_counts"]) for p in prompts]
        while_ = sp["compose_sequences"] and any(split_while(p) for p in prompts)
        # (with a "while" prompt, generate_prompts generates each prompt on its own: through here, read there)
        readings = {} if literal or while_ else self._read([p for pl in plans for p in pl])
        if while_:  # "X while Y": X, then an arms edit
            out = generate_prompts(self, list(prompts), lengths, literal=literal, **{**given, **{
                k: args[k] for k in ("seed", "samples", "use_retrieval", "progress", "cancelled", "candidates")}})
        elif any(len(pl) > 1 for pl in plans):
            out = self._generate_composed(list(prompts), plans, tok_given, {**args, "readings": readings})
        else:
            whole = {p: readings[pl[0]] for p, pl in zip(prompts, plans) if pl[0] in readings}
            out = self._generate_batch(list(prompts), tok_given, **args, readings=whole)
        notes = self.coverage_warnings([p for pl in plans for p in pl])
        for prompt, pl in zip(prompts, plans):  # what a part was read as, then what the model may not know
            found = list(dict.fromkeys(w for part in pl for w in (
                [f"read {part!r} as {readings[part].captions[0]!r}"]
                if part in readings and readings[part].captions[0] != part else []) + notes[part]))
            for s in out:  # (a motion generated on its own, as with a "while" prompt, carries its reading notes)
                if s.prompt == prompt:
                    s.warnings = list(dict.fromkeys([w for w in s.warnings or [] if w.startswith("read ")] + found))
        return out

    def _read(self, parts: list[str]) -> dict:
        """{part: Reading} for the parts the caption bank reads (each read alone, so that a reading does not
        depend on the other prompts); {} without a bank, or when its sentence encoder cannot be loaded (then
        ``info["reading"]`` says why, once, and the prompts are used as typed)."""
        if self.reader is None:
            return {}
        from backend.generation.reading import ReaderUnavailable

        out = {}
        try:
            for p in dict.fromkeys(parts):
                r = self.reader.read([p], self._tower_numpy, self.coverage.words).get(p)
                if r is not None:
                    out[p] = r
        except ReaderUnavailable as e:
            self.reader = None
            self.info["reading"] = f"off: {e}"
            return {}
        return out

    def warm_reader(self) -> None:
        """Load the caption bank's sentence encoder and the tower's embeddings of the bank now (about 2 s), so that
        a server's first request does not pay for them; a missing encoder goes to ``info["reading"]`` as on a
        first read."""
        if self.reader is not None:
            with torch.inference_mode():
                self._read(["a person walks forward"])

    def _tower_numpy(self, texts) -> np.ndarray:
        """The text encoder's embeddings as a numpy array (what the caption bank compares; cached by it)."""
        return self._encode(self.text_encoder, list(texts)).float().cpu().numpy()

    def _text_embedding(self, encoder, prompt: str, readings: dict | None):
        """(1, D): the prompt's embedding, or for a read prompt the mean of its captions' (each encoded alone)."""
        r = (readings or {}).get(prompt)
        if r is None:
            return self._encode(encoder, [prompt])
        return torch.cat([self._encode(encoder, [c]) for c in r.captions]).mean(0, keepdim=True)

    def coverage_warnings(self, prompts: list[str]) -> dict[str, list[str]]:
        """{prompt: warnings}: words the model never saw, and (when the model gives a threshold and has a
        retriever) a prompt far from every caption of its database. Costs one retrieval, no generation."""
        cov = self.coverage
        sims = {}
        if cov.min_similarity is not None and self.retriever is not None and prompts:
            out = self.retriever(list(prompts), k=1)
            sims = {p: (float(s[0]), c[0] if c else None) for p, s, c in zip(prompts, out.scores, out.captions)}
            far = [i for i, p in enumerate(prompts) if sims[p][0] < cov.min_similarity]
            near = self._near_captured_examples(out, far)
            for i, close in zip(far, near):
                if close:
                    sims[prompts[i]] = (None, None)
        return {p: cov.warnings(p, *sims.get(p, (None, None))) for p in prompts}

    def _near_captured_examples(self, out, rows: list[int]) -> list[bool]:
        """For each of the retrieval output's query ``rows``: is its embedding within ``EXAMPLE_SIMILARITY``
        (cosine) of an example prompt of a family learnt from captured motion only? A shipped folder's database
        has no entries for those families (``backend.train.ship``), so the database similarity says nothing about them: "a person dances
        salsa" was told it was "far from every motion the model knows". The examples are encoded once per
        coverage (with the retriever's text model, as the queries)."""
        cov = self.coverage
        if self._examples_cache[0] is not cov:
            ex = [e for f in cov.families if f.source == "captured" for e in f.examples]
            emb = None
            if ex:
                with torch.inference_mode():
                    emb = _unit(self.retriever.text_model.encode(ex))
            self._examples_cache = (cov, emb)
        emb = self._examples_cache[1]
        if emb is None or not rows:
            return [False] * len(rows)
        return ((_unit(out.query_emb[rows]) @ emb.T).max(axis=1) >= EXAMPLE_SIMILARITY).tolist()

    def _part_tokens(self, prompts, plans, tok_given, seed, readings=None):
        """-> (plans, token lengths per part): a given length split evenly (plus the blends), else the
        estimator's per part, scaled to fit 196 frames; a prompt too short for its parts stays whole."""
        max_tok = MAX_FRAMES // UNIT_LENGTH
        est = None
        if tok_given is None:  # each part's length from its own text alone and its own generator
            emb = {p: self._text_embedding(self.length_text_encoder, p, readings) for pl in plans for p in pl}
            est = [int(self.models.length_estimator.sample_tokens(
                emb[p], row_generator(self.device, seed, 0, j, purpose=1)).clamp(1, max_tok)[0])
                for pl in plans for j, p in enumerate(pl)]
        out_plans, out_toks, k = [], [], 0
        for i, pl in enumerate(plans):
            n, extra = len(pl), BLEND_TOKENS * (len(pl) - 1)
            if est is not None:
                t = [max(int(x), MIN_PART_TOKENS) for x in est[k:k + n]]
                k += n
                while sum(t) - extra > max_tok and max(t) > MIN_PART_TOKENS:
                    t[t.index(max(t))] -= 1
                total = sum(t) - extra
            else:
                total = tok_given[i]
                t = [(total + extra) // n + (1 if j < (total + extra) % n else 0) for j in range(n)]
            if n > 1 and (min(t) < MIN_PART_TOKENS or total > max_tok):
                pl, t = [prompts[i]], [min(max(total, 1), max_tok)]
            out_plans.append(pl)
            out_toks.append(t)
        return out_plans, out_toks

    def _generate_composed(self, prompts, plans, tok_given, args) -> list[GeneratedSample]:
        from backend.motion.compose import join_features

        plans, toks = self._part_tokens(prompts, plans, tok_given, args["seed"], args.get("readings"))
        flat = [p for pl in plans for p in pl]
        inner = self._generate_batch(flat, [x for t in toks for x in t], **args,
                                     parts=[j for pl in plans for j in range(len(pl))])
        samples, out, k = args["samples"], [], 0
        for prompt, pl in zip(prompts, plans):
            for s in range(samples):
                rows = [inner[(k + j) * samples + s] for j in range(len(pl))]
                f = join_features([r.features for r in rows], BLEND_TOKENS * UNIT_LENGTH)
                out.append(GeneratedSample(
                    prompt=prompt, sample_index=s, seed=int(args["seed"]), joints=_features_to_joints(f),
                    features=f, length=int(len(f)), retrieved=[c for r in rows for c in r.retrieved],
                    retrieved_ids=[i for r in rows for i in r.retrieved_ids], parts=list(pl) if len(pl) > 1 else []))
            k += len(pl)
        return out

    def _conditions(self, prompts, use_retrieval, report, check, lengths: bool = False, readings=None) -> dict:
        """{prompt: (text embedding (1, D), length-estimator embedding or None, retrieved dict or None, captions,
        ids)} for each distinct prompt, each encoded and retrieved for alone: a batch of texts does not give the
        same embedding to the last bit as one text (float sums in another order), and a motion must not depend
        on which other prompts came with it. A prompt in ``readings`` is conditioned on its captions
        (``_text_embedding``) and retrieved for with them. Reports "text" and "retrieval" within the first 0.06."""
        out = {}
        distinct = list(dict.fromkeys(prompts))
        for j, p in enumerate(distinct):
            report("text", 0.06 * j / len(distinct))
            emb = self._text_embedding(self.text_encoder, p, readings)
            check()
            re_dict, captions, ids = None, [], []
            if use_retrieval and self.retriever is not None:
                report("retrieval", 0.06 * (j + 0.5) / len(distinct))
                if self.text_encoder is getattr(self.retriever, "text_model", None):
                    got = self.retriever([p], k=1, query_emb=emb)  # same model: do not encode twice
                else:
                    got = self.retriever([readings[p].captions[0] if p in (readings or {}) else p], k=1)
                re_dict = {k: torch.as_tensor(got.re_dict[k]).to(self.device, torch.float32)
                           for k in ("re_text", "re_motion")}
                captions, ids = list(got.captions[0]), list(got.ids[0])
                check()
            len_emb = None
            if lengths:
                len_emb = emb if self.length_text_encoder is self.text_encoder else \
                    self._text_embedding(self.length_text_encoder, p, readings)
            out[p] = (emb, len_emb, re_dict, captions, ids)
        return out

    def _generate_batch(self, prompts, tok_given, seed, samples, cond_scale, time_steps, temperature, topk,
                        res_cond_scale, use_retrieval, progress, cancelled, candidates=1,
                        parts=None, readings=None, together: int = 1) -> list[GeneratedSample]:
        """Every prompt x sample, prompt-major; ``tok_given`` token lengths per prompt, or None. Each motion is
        sampled from its own generator (``row_generator(seed, sample, part)``, ``parts``: the part index of each
        prompt in a composed one, else 0), so it does not depend on the other prompts of the request (their
        number, order or lengths). With ``candidates`` > 1: samples x candidates rows per prompt, the best of
        each ``candidates`` kept; the candidates of one motion are sampled ``together`` (``_sample_rows``)."""
        scorer = self._scorer() if candidates > 1 else None
        if scorer is not None:
            rows = self._generate_batch(prompts, tok_given, seed, samples * candidates, cond_scale, time_steps,
                                        temperature, topk, res_cond_scale, use_retrieval, progress, cancelled,
                                        parts=parts, readings=readings, together=candidates)
            return self._best_of(scorer, prompts, rows, samples, candidates, readings)
        report = progress or (lambda stage, frac: None)

        def check():
            if cancelled is not None and cancelled():
                raise GenerationCancelled("generation cancelled")

        conds = self._conditions(prompts, use_retrieval, report, check, lengths=tok_given is None,
                                 readings=readings)
        todo = [(i, list(range(s, min(s + together, samples)))) for i in range(len(prompts))
                for s in range(0, samples, together)]
        sp = dict(cond_scale=cond_scale, time_steps=time_steps, temperature=temperature, topk=topk,
                  res_cond_scale=res_cond_scale)
        out = []
        for k, (i, group) in enumerate(todo):
            def row_report(stage, frac, k=k):
                report(stage, 0.06 + 0.94 * (k + frac) / len(todo))
            gens = [row_generator(self.device, seed, s, 0 if parts is None else parts[i]) for s in group]
            out += self._sample_rows(prompts[i], None if tok_given is None else tok_given[i], gens, seed, group,
                                     conds[prompts[i]], sp, row_report, check, cancelled)
        report("done", 1.0)
        return out

    def _sample_rows(self, prompt, tok, gens, seed, sample_ids, conditioning, sp, report, check,
                     cancelled) -> list[GeneratedSample]:
        """Motions of one prompt, motion ``j`` drawing from ``gens[j]`` alone: its length (unless ``tok`` is
        given), then its masked and residual tokens, RVQ-VAE decode, joints. Motions of the same length are
        sampled as one batch, each row from its own generator (``sampling.categorical``): a row draws what it
        would draw alone, and its logits differ from a batch of one only in float rounding (bench/candidates.py:
        best of four 1.29x faster than one draw at a time on the starter). ``report(stage, fraction of these
        motions)``."""
        m = self.models
        emb, len_emb, re_dict, captions, ids = conditioning
        lens = []
        for g in gens:
            if tok is None:
                report("length", 0.0)
                lens.append(int(m.length_estimator.sample_tokens(len_emb, g).clamp(1, MAX_FRAMES // UNIT_LENGTH)[0]))
            else:
                lens.append(int(tok))
        check()
        out: list = [None] * len(gens)
        groups = {n: [j for j, x in enumerate(lens) if x == n] for n in dict.fromkeys(lens)}
        for g_i, (n_tok, rows) in enumerate(groups.items()):
            b = len(rows)

            def part_report(stage, frac, g_i=g_i):
                report(stage, (g_i + frac) / len(groups))

            m_lens = torch.full((b,), n_tok, device=self.device, dtype=torch.long)
            rd = None if re_dict is None else {key: v.expand(b, *v.shape[1:]) for key, v in re_dict.items()}
            all_aux, all_ts = self._sample_tokens(emb.expand(b, -1), m_lens, rd,
                                                  gens[rows[0]] if b == 1 else [gens[j] for j in rows], sp,
                                                  part_report, cancelled)
            check()
            part_report("decode", 0.85)
            n = n_tok * UNIT_LENGTH
            feats = (self._decode(all_aux, all_ts, m_lens) * self.std + self.mean).cpu().numpy()
            check()
            part_report("joints", 0.95)
            for r, j in enumerate(rows):
                f = np.ascontiguousarray(feats[r, :n], dtype=np.float32)
                out[j] = GeneratedSample(prompt=prompt, sample_index=sample_ids[j], seed=int(seed),
                                         joints=_features_to_joints(f), features=f, length=n,
                                         retrieved=captions[:], retrieved_ids=[str(x) for x in ids])
        return out

    def _sample_tokens(self, cond, m_lens, re_dict, gen, sp, report, cancelled, keep=None):
        """Token ids of the 1D and 2D branches, all RVQ layers, for rows conditioned on ``cond`` (B, D) at token
        lengths ``m_lens``, drawing from ``gen``: the two masked transformers, then the two residual ones. ``sp``:
        cond_scale, time_steps, temperature, topk, res_cond_scale. ``keep`` (editing): (keep1d (B, T), keep2d
        (B, T, 6), ids1d (B, T, Q), ids2d (B, T, 6, Q)): those tokens are given, the rest sampled. Reports the
        stages from 0.02 to 0.85 of the rows' fraction."""
        m = self.models
        k1, k2, i1, i2 = keep if keep is not None else (None, None, None, None)

        def stage(name, lo, hi):
            return lambda f: report(name, lo + (hi - lo) * f)

        cs, ts, temp, topk = sp["cond_scale"], sp["time_steps"], sp["temperature"], sp["topk"]
        report("mask_aux", 0.02)
        base1 = m.mask_aux.generate(cond, m_lens, ts, cs, temp, topk, gen, cancelled=cancelled,
                                    on_step=stage("mask_aux", 0.02, 0.3), keep=k1,
                                    init_ids=None if i1 is None else i1[..., 0])
        base2 = m.mask_ts.generate(cond, m_lens, re_dict, ts, cs, temp, topk, gen, use_retrieval=re_dict is not None,
                                   cancelled=cancelled, on_step=stage("mask_ts", 0.3, 0.55), keep=k2,
                                   init_ids=None if i2 is None else i2[..., 0])
        report("residual", 0.55)
        all1 = m.res_aux.generate(base1, cond, m_lens, 1.0, topk, sp["res_cond_scale"], gen, cancelled=cancelled,
                                  on_step=stage("residual", 0.55, 0.7), keep=k1, init_ids=i1)
        all2 = m.res_ts.generate(base2, cond, m_lens, 1.0, topk, sp["res_cond_scale"], gen, cancelled=cancelled,
                                 on_step=stage("residual", 0.7, 0.85), keep=k2, init_ids=i2)
        return all1, all2

    def _scorer(self):
        """The Part-TMR motion/text embedder that ranks candidates, or None (no retrieval model: no ranking)."""
        if self._scorer_cache is None:
            from backend.library.embed import MotionEmbedder, NoRetrievalModel

            try:
                self._scorer_cache = MotionEmbedder.from_pipeline(self)
            except NoRetrievalModel:
                self._scorer_cache = False
        return self._scorer_cache or None

    @staticmethod
    def _best_of(scorer, prompts, rows, samples, candidates, readings=None) -> list[GeneratedSample]:
        """Rows are prompt-major, samples * candidates per prompt; keep, per prompt and sample, the candidate
        whose motion embedding has the highest cosine with the prompt's text embedding (a read prompt's: the
        mean of its captions', the words it was generated from)."""
        reads = readings or {}
        groups = [list(reads[p].captions) if p in reads else [p] for p in prompts]
        flat = scorer.embed_text([t for g in groups for t in g])  # one call for every text scored against
        ends = np.cumsum([len(g) for g in groups])
        text = _unit(np.stack([flat[e - len(g):e].mean(0) for g, e in zip(groups, ends)]))
        motion = scorer.embed([r.features for r in rows])
        per = samples * candidates
        out = []
        for p in range(len(prompts)):
            for s in range(samples):
                k0 = p * per + s * candidates
                best = k0 + int(np.argmax(motion[k0:k0 + candidates] @ text[p]))
                r = rows[best]
                r.sample_index = s
                out.append(r)
        return out

    def _decode(self, ids_aux: torch.Tensor, ids_ts: torch.Tensor, m_lens: torch.Tensor) -> torch.Tensor:
        """RVQ-VAE decode, one batch per distinct length, cut to that length: the decoder's convolutions
        never see a batch mate's padding (zero codes it was not trained on). -> (B, 4*max_len, 263) float,
        zeros past each motion's end."""
        b, t = ids_aux.shape[:2]
        out = torch.zeros(b, t * UNIT_LENGTH, self.mean.shape[0], device=ids_aux.device)
        for n in torch.unique(m_lens).tolist():
            rows = torch.nonzero(m_lens == n).flatten()
            out[rows, :n * UNIT_LENGTH] = self.models.vq.decode(ids_aux[rows, :n], ids_ts[rows, :n]).float()
        return out
