"""Training recipe for the streaming recogniser: ``python -m workbench train-asr``.

Corpus manifests -> EOU manifests -> BPE tokenizer with <EOU>/<EOB> -> NeMo
``EncDecHybridRNNTCTCBPEEOUModel`` (cache-aware FastConformer, several lookaheads) -> Lightning fit ->
``.nemo`` + config + metrics (greedy WER per lookahead on the held-out-speaker test split).
Profiles are YAML files in ``configs/``; every key can be overridden as ``a.b.c=value``. Scaling out is
Lightning's job: ``trainer.devices=8 trainer.num_nodes=2``.
"""
from __future__ import annotations

import json
import os
import shutil
import time
import warnings
from pathlib import Path

import torch

from ..data import ensure_corpus, is_clean, open_dataset
from ..results import repo_path
from ..scale import finish_ranks, fixed_mmap_threshold, shard_audit
from . import ledger as ledgers
from .tokenizer import install_tokenizer, strip_special, train_tokenizer

CONFIGS = Path(__file__).parent / "configs"
DATA = Path(__file__).resolve().parents[2] / "data"
MODELS = DATA / "models"     # shipped checkpoints live in the repository, wherever corpora are built
CACHE = DATA / "cache"
LEAN_MMAP_THRESHOLD = 4 * 1024 * 1024   # train(lean_memory=True); measured on whisper_open: see scale.fixed_mmap_threshold


def load_profile(profile: str, overrides: list[str] = ()):
    """A profile YAML (following ``defaults_from``) merged with ``key=value`` overrides."""
    from omegaconf import OmegaConf
    path = Path(profile) if profile.endswith(".yaml") else CONFIGS / f"{profile}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"no ASR profile {profile!r} (looked for {path})")
    cfg = OmegaConf.load(path)
    if "defaults_from" in cfg:
        base = load_profile(str(path.parent / cfg.pop("defaults_from")))
        replace = list(cfg.pop("replace", None) or [])     # subtrees that replace the base's instead of merging
        own = cfg
        cfg = OmegaConf.merge(base, cfg)
        for key in replace:
            if OmegaConf.select(own, key) is None:
                raise KeyError(f"profile {path.name}: replace names {key!r}, which the profile does not set")
            OmegaConf.update(cfg, key, OmegaConf.select(own, key), merge=False)
    return OmegaConf.merge(cfg, OmegaConf.from_dotlist(list(overrides)))


def eou_manifest(entries: list[dict], path: Path, max_trail_s: float | None = None) -> Path:
    """NeMo's EOU dataset reads ``sou_time``/``eou_time``/``utterances``/``is_backchannel`` per segment:
    our ground-truth start and end of speech go straight in.

    ``max_trail_s`` shortens the trailing silence of training audio to a per-utterance amount in
    [0.3 s, max_trail_s] (the dataset's random padding adds more): a CPU spends its time on speech.
    """
    import zlib

    from ..files import write_text_atomic
    lines = []
    for e in entries:
        duration = e["duration"]
        if max_trail_s is not None:
            u = (zlib.crc32(e.get("id", e["audio_filepath"]).encode()) % 1000) / 1000
            duration = min(duration, round(e["speech_end"] + 0.3 + u * (max_trail_s - 0.3), 3))
        lines.append(json.dumps({"audio_filepath": e["audio_filepath"], "duration": duration, "text": e["text"],
                                 "sou_time": [e["speech_start"]], "eou_time": [e["speech_end"]],
                                 "utterances": [e["text"]], "is_backchannel": [False]}) + "\n")
    return write_text_atomic(path, "".join(lines))   # DDP ranks write the same file: each whole, in turn


class TorchaudioRNNTLoss(torch.nn.Module):
    """torchaudio's C++ RNNT loss with the call shape of NeMo's inner losses.

    NeMo's CPU default (numba) takes ~10 s for a batch that torchaudio does in 0.3 s, with the same loss
    and gradients (checked to 1e-5). NeMo's joint already returns log-probs on CPU; torchaudio applies
    log-softmax again, which leaves log-probs unchanged.
    """

    def __init__(self, blank: int, clamp: float = -1.0):
        super().__init__()
        self.blank, self.clamp, self.reduction = blank, clamp, None   # RNNTLoss sets .reduction

    def forward(self, acts, labels, act_lens, label_lens):
        import torchaudio
        return torchaudio.functional.rnnt_loss(acts.float(), labels.int(), act_lens.int(), label_lens.int(),
                                               blank=self.blank, clamp=self.clamp, reduction="none")


def use_torchaudio_rnnt_loss(model) -> None:
    # model.loss is NeMo's RNNTLoss wrapper (reduction, narrowing); the fused joint holds the same object.
    model.loss._loss = TorchaudioRNNTLoss(blank=model.loss._blank)


def hide_the_end(model, seconds: float, samples_per_frame: int):
    """Train with the end of every utterance out of sight: each training signal goes on for ``seconds`` more
    (its own last 0.3 s of background, looped), and the losses read only the frames of the original length.

    Why: an RNNT may emit a token at any frame of its alignment, and <EOU> is surest where the input visibly
    ends (the features' edge effects at the last frames). Run r009 (Whisper encoder) learned exactly that: on a
    clean utterance with 2 s of silence after it, P(<EOU>) stayed below 0.02 while streaming and reached 1.0 only
    in the flush at the end of the stream, so a live microphone, whose stream does not end, never saw <EOU>
    (r007 fired 0.87 s after the speech). Beyond the lookahead the end is invisible, and <EOU> must be read
    from the silence. ``del model.forward`` undoes it (the export is the plain model)."""
    extra_frames = int(round(seconds * model.preprocessor._sample_rate / samples_per_frame))
    extra = extra_frames * samples_per_frame
    if extra_frames < 1:
        raise ValueError(f"hidden_end_s = {seconds} is shorter than one encoder frame")
    plain = type(model).forward.__get__(model)
    loop = int(0.3 * model.preprocessor._sample_rate)

    def forward(input_signal=None, input_signal_length=None, processed_signal=None, processed_signal_length=None):
        if not model.training or input_signal is None:
            return plain(input_signal=input_signal, input_signal_length=input_signal_length,
                         processed_signal=processed_signal, processed_signal_length=processed_signal_length)
        sig = torch.nn.functional.pad(input_signal, (0, extra))
        for b, n in enumerate(input_signal_length.tolist()):
            tail = input_signal[b, max(0, n - loop):n]
            if len(tail):
                sig[b, n:n + extra] = tail.repeat(extra // len(tail) + 1)[:extra]
        encoded, encoded_len = plain(input_signal=sig, input_signal_length=input_signal_length + extra)
        keep = encoded_len - extra_frames
        return encoded[..., :int(keep.max())], keep

    model.forward = forward
    return model


def model_config(cfg, manifests: dict[str, Path], tokenizer_dir: Path):
    from . import features, whisper_encoder  # noqa: F401  (lets NeMo build the profile's global-MVN preprocessor; the Whisper encoder too)
    from omegaconf import OmegaConf
    m = OmegaConf.to_container(cfg.model, resolve=True)
    m["train_ds"]["manifest_filepath"] = str(manifests["train"])
    m["validation_ds"]["manifest_filepath"] = str(manifests["dev"])
    m["validation_ds"]["sample_rate"] = m["train_ds"]["sample_rate"] = m["sample_rate"]
    m["test_ds"] = dict(m["validation_ds"], manifest_filepath=str(manifests["test"]))
    m["tokenizer"] = {"dir": str(tokenizer_dir), "type": "bpe"}
    return OmegaConf.create(m)


def ctc_model_config(cfg, manifests: dict[str, Path], tokenizer_dir: Path):
    """EncDecCTCModelBPE config with the profile's preprocessor, augmentation, encoder and optimiser: the
    encoder pre-training stage. NeMo's plain manifest dataset; the tokenizer is the hybrid's own (its
    <EOU>/<EOB> pieces stay unused here), so the CTC head carries over to the hybrid model unchanged."""
    from . import features, whisper_encoder  # noqa: F401  (lets NeMo build the profile's global-MVN preprocessor; the Whisper encoder too)
    from omegaconf import OmegaConf
    m = OmegaConf.to_container(cfg.model, resolve=True)

    def ds(split, shuffle, batch):
        return {"manifest_filepath": str(manifests[split]), "sample_rate": m["sample_rate"], "batch_size": batch,
                "shuffle": shuffle, "num_workers": m["train_ds"].get("num_workers", 1), "max_duration": 20.0,
                "min_duration": 0.1, "pin_memory": False}
    return OmegaConf.create({
        "sample_rate": m["sample_rate"], "train_ds": ds("train", True, m["train_ds"]["batch_size"]),
        "validation_ds": ds("dev", False, m["validation_ds"]["batch_size"]),
        "test_ds": ds("test", False, m["validation_ds"]["batch_size"]),
        "tokenizer": {"dir": str(tokenizer_dir), "type": "bpe"}, "preprocessor": m["preprocessor"],
        "spec_augment": m["spec_augment"], "encoder": m["encoder"],
        "decoder": {"_target_": "nemo.collections.asr.modules.ConvASRDecoder", "feat_in": m["encoder"]["d_model"],
                    "num_classes": -1, "vocabulary": []},
        "decoding": {"strategy": "greedy"}, "optim": m["optim"]})


def ctc_to_hybrid_state(state: dict) -> dict:
    """Weights of a CTC-stage model under the hybrid model's names (its CTC head is ``ctc_decoder``; the
    hybrid's ``decoder`` is the RNNT prediction network, which starts fresh)."""
    return {("ctc_" + k if k.startswith("decoder.") else k): v for k, v in state.items()}


def evaluate(model, entries: list[dict], contexts, batch_size: int = 32) -> dict:
    """Greedy RNNT WER (jiwer) on ``entries`` for each attention context, offline with the same mask
    the streaming model uses. Returns {"[70, 13]": {"wer": ..., "rtf": ...}, ...}."""
    import jiwer
    model.eval()
    refs = [e["text"] for e in entries]
    audio_s = sum(e["duration"] for e in entries)
    out = {}
    for ctx in contexts:
        model.encoder.set_default_att_context_size(list(ctx))
        t0 = time.time()
        with torch.inference_mode():
            hyps = model.transcribe([e["audio_filepath"] for e in entries], batch_size=batch_size, verbose=False)
        hyps = hyps[0] if isinstance(hyps, tuple) else hyps
        texts = [strip_special(h.text if hasattr(h, "text") else h) for h in hyps]
        clean = [i for i, e in enumerate(entries) if is_clean(e)]
        out[str(list(ctx))] = {"wer": round(jiwer.wer(refs, texts), 4),
                               "wer_clean": round(jiwer.wer([refs[i] for i in clean], [texts[i] for i in clean]), 4) if clean else None,
                               "rtf": round((time.time() - t0) / audio_s, 5),
                               "lookahead_ms": int(ctx[1]) * 80,
                               "examples": [[r, h[:200]] for r, h in zip(refs[:3], texts[:3])]}
    model.encoder.set_default_att_context_size(list(contexts[-1]))
    return out


def token_density(tokenizer_dir: Path, entries: list[dict], frame_s: float) -> dict:
    """BPE tokens (+ <EOU>) per encoder frame of speech. CTC needs at least one frame per token and
    learns slowly when most frames must carry one: with 8x subsampling a 128-piece BPE gave a median of
    0.68 and a p95 above 1 on our corpus, and the model did not learn in 1200 steps; 512 pieces give a median of 0.35, p95 0.62."""
    import numpy as np
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=str(Path(tokenizer_dir) / "tokenizer.model"))
    r = np.array([(len(sp.encode(e["text"])) + 1) / max(1.0, (e["speech_end"] - e["speech_start"]) / frame_s)
                  for e in entries])
    return {"median": float(np.median(r)), "p95": float(np.percentile(r, 95)), "max": float(r.max())}


class ComputeMeter:
    """A Lightning callback that counts a run's CPU and wall seconds and its first step, and keeps them in every
    checkpoint, so a run resumed after an interruption is charged for all of its compute (up to its last
    checkpoint: what ran after it is lost with the process, and not counted)."""

    def __new__(cls, *a, **k):          # a Callback subclass made lazily: lightning imports in seconds
        import lightning.pytorch as pl

        class _Meter(pl.Callback):
            def __init__(self):
                self.cpu_s = self.wall_s = 0.0
                self.start_step = None
                self._t = None

            def on_train_start(self, trainer, pl_module):
                self._t = (ledgers.cpu_seconds(), time.time())
                if self.start_step is None:
                    self.start_step = int(trainer.global_step)

            def _tick(self):
                if self._t is not None:
                    c, w = ledgers.cpu_seconds(), time.time()
                    self.cpu_s += c - self._t[0]
                    self.wall_s += w - self._t[1]
                    self._t = (c, w)

            def on_train_end(self, trainer, pl_module):
                self._tick()
                self._t = None

            def state_dict(self):
                self._tick()
                return {"cpu_s": self.cpu_s, "wall_s": self.wall_s, "start_step": self.start_step}

            def load_state_dict(self, state):
                self.cpu_s, self.wall_s = float(state["cpu_s"]), float(state["wall_s"])
                self.start_step = state.get("start_step")

        return _Meter()


class StepTimer:
    """A Lightning callback with each training step's wall and CPU seconds (loader included: what a step costs)."""

    def __new__(cls):
        import lightning.pytorch as pl

        class _Timer(pl.Callback):
            def __init__(self):
                self.steps, self._t = [], None

            def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
                now = (time.perf_counter(), ledgers.cpu_seconds())
                if self._t is not None:
                    self.steps.append({"wall_s": now[0] - self._t[0], "cpu_s": now[1] - self._t[1]})
                self._t = now

        return _Timer()


def _adapt_entries(spec) -> list[dict]:
    """Real speech mixed into training (profile key ``adapt``: source, part, repeat): only a part that is not
    scored on test (Asterisk's ``adapt_train``), with its speech bounds for the <EOU> labels and its text in the
    corpus's spoken form (stage 7 trained on the written form: digits and punctuation were <unk> pieces)."""
    from ..data.real import spoken_form, with_speech_bounds
    if spec.part not in ("adapt_train",):
        raise ValueError(f"adapt.part must be 'adapt_train' (the held-out half and adapt_dev are never trained on), "
                         f"not {spec.part!r}")
    entries = [{**e, "text": spoken_form(e["text"])} for e in with_speech_bounds(open_dataset(spec.source, spec.part).entries)]
    return [dict(e) for _ in range(int(spec.get("repeat", 1))) for e in entries if e["text"]]


def _plan_start(work: Path, resume: bool, init_from, ledger_path, fresh: str = "from scratch") -> dict:
    """Where the run's weights come from and how the ledger will name it: {ckpt, init_from, id, parent, how,
    charged} (``charged``: the compute and step of the checkpoint already in the ledger, not charged again).

    ``--resume`` continues the work folder's checkpoint (optimiser, schedule, step, data position): an
    interrupted run keeps its id and is charged for all of its compute; a run that was already recorded goes on
    as a new run whose parent is that one (on the finished run's schedule: a new schedule is ``--init-from`` its
    export). With no checkpoint (the cache is gone), it continues from the shipped model with a fresh
    optimiser, and says so."""
    last = work / "checkpoints" / "last.ckpt"
    stamp = work / "run.json"
    from ..files import write_text_atomic
    if resume and last.exists():
        meta = json.loads(stamp.read_text()) if stamp.exists() else \
            {"id": ledgers.next_id(ledger_path) if ledger_path else f"r{int(time.time())}", "parent": None,
             "how": "a checkpoint from before the ledger", "charged": None}
        if meta.get("charged"):              # recorded already: what follows is a new run on top of it
            meta = {"id": ledgers.next_id(ledger_path) if ledger_path else f"r{int(time.time())}",
                    "parent": meta["id"], "how": f"resumed {repo_path(last)} after run {meta['id']}",
                    "charged": meta["charged"]}
        else:
            meta = {**meta, "how": meta.get("how", "") + f"; resumed {repo_path(last)} after an interruption"}
        write_text_atomic(stamp, json.dumps(meta))
        return {**meta, "ckpt": last, "init_from": None}
    if resume and not init_from:
        shipped = MODELS / "asr_small" / "model.nemo"
        if not shipped.exists():
            raise FileNotFoundError(f"--resume: no checkpoint in {work} and no shipped model at {shipped}")
        print(f"[train-asr] --resume: no checkpoint in {work}; continuing from the shipped model {shipped} "
              "with a fresh optimiser and schedule", flush=True)
        init_from = shipped
    runs = ledgers.read(ledger_path)["runs"] if ledger_path else []
    parent = ledgers.parent_of(runs, ledgers.sha1_of(init_from)) if init_from else None
    meta = {"id": ledgers.next_id(ledger_path) if ledger_path else f"r{int(time.time())}",
            "parent": parent and parent["id"],
            "how": f"init from {repo_path(init_from)}" if init_from else fresh, "charged": None}
    write_text_atomic(stamp, json.dumps(meta))
    return {**meta, "ckpt": None, "init_from": init_from}


def train(profile: str = "small", overrides: list[str] = (), out_dir: str | os.PathLike | None = None,
          work_dir: str | os.PathLike | None = None, resume: bool = False,
          init_from: str | os.PathLike | None = None, ledger: str | os.PathLike | None = None,
          note: str = "", n_dev: int = 200, measure_steps: int = 0, lean_memory: bool = False):
    """Run the recipe; returns the folder holding model.nemo, config.yaml and metrics.json.

    ``resume`` continues the work folder's Lightning checkpoint (optimizer, schedule, step; the data order
    moves on with the step); with no checkpoint there, the shipped model with a fresh optimizer.
    ``init_from`` starts from a ``.nemo`` (its weights and tokenizer) with a fresh optimizer and schedule.
    Every run on the default corpus appends to the ledger beside the shipped model (``ledger``; smoke runs
    only when given one): steps, CPU-hours, dev WER per split, ``note`` (what changed).
    ``measure_steps`` > 0 only times that many training steps (no validation, export or ledger) and returns
    the per-step wall and CPU seconds (``bench asr-train-speed``).
    ``lean_memory`` keeps the trainer's heap flat (glibc's mmap threshold fixed at 4 MiB: ~2 GB instead of ~9 GB
    for whisper_open, ~25 % slower per step; :func:`workbench.scale.fixed_mmap_threshold`): for a run that
    shares the machine with other work.
    """
    import lightning.pytorch as pl
    from lightning.pytorch.callbacks import ModelCheckpoint
    from nemo.collections.asr.models.asr_eou_models import EncDecHybridRNNTCTCBPEEOUModel
    from omegaconf import OmegaConf

    from . import features, whisper_encoder  # noqa: F401  (registers the global-MVN preprocessor with NeMo; the Whisper encoder too)
    if lean_memory and not fixed_mmap_threshold(LEAN_MMAP_THRESHOLD):
        warnings.warn("lean_memory: this C library is not glibc; the heap is left as it is", stacklevel=2)
    cfg = load_profile(profile, overrides)
    name = f"asr_{Path(profile).stem}"
    out = Path(out_dir or MODELS / name)
    work = Path(work_dir or CACHE / name)
    work.mkdir(parents=True, exist_ok=True)
    if measure_steps:
        cfg.trainer.max_steps, cfg.trainer.max_time, cfg.trainer.limit_val_batches = int(measure_steps), None, 0
        cfg.trainer.enable_checkpointing, ledger, resume = False, False, False
    if ledger is None and cfg.corpus.size != "smoke":
        ledger = MODELS / "asr_small" / ledgers.LEDGER_NAME
    pretrained = cfg.model.encoder.get("whisper")
    plan = _plan_start(work, resume, init_from, ledger or None,
                       f"Whisper {pretrained}'s pretrained encoder, fresh heads" if pretrained else "from scratch")
    ckpt_path, init_from = plan["ckpt"], plan["init_from"]
    torch.set_num_threads(int(cfg.threads))
    start_step = torch.load(ckpt_path, map_location="cpu", weights_only=False)["global_step"] if ckpt_path else 0
    pl.seed_everything(int(cfg.get("seed", 0)) + start_step, workers=True)
    # the data position: a resumed run's loader shuffles with a seed moved on by the steps already taken, so it
    # continues into data it has not just seen instead of replaying the first batches of the interrupted run
    cfg.model.train_ds.seed = int(cfg.get("seed", 0)) + start_step

    corpus = ensure_corpus(cfg.corpus.size, cfg.corpus.seed)
    splits = {s: open_dataset(corpus, s).entries for s in ("train", "dev", "test")}
    if cfg.get("train_filter") == "clean":      # a curriculum's first stage: no noise, no truncated prefixes
        splits["train"] = [e for e in splits["train"] if is_clean(e)]
    elif cfg.get("train_filter") not in (None, "all"):
        raise ValueError(f"train_filter must be 'all' or 'clean', not {cfg.train_filter!r}")
    if cfg.get("channel") and float(cfg.channel.fraction) > 0:
        from ..data.channel import KINDS, channel_variants
        variants = channel_variants(splits["train"], float(cfg.channel.fraction), CACHE / "channel" / corpus.name,
                                    tuple(cfg.channel.get("kinds") or KINDS), seed=int(cfg.get("seed", 0)))
        print(f"[train-asr] + {len(variants)} channel variants of training utterances "
              f"({', '.join(sorted(set(v['channel'] for v in variants)))})", flush=True)
        splits["train"] = splits["train"] + variants
    if cfg.get("adapt"):
        extra = _adapt_entries(cfg.adapt)
        print(f"[train-asr] + {len(extra)} utterances of real speech ({cfg.adapt.source} {cfg.adapt.part}, "
              f"x{cfg.adapt.get('repeat', 1)})", flush=True)
        splits["train"] = splits["train"] + extra
    for more in cfg.get("more_corpora") or []:     # other corpora's training speech (e.g. size "open")
        extra = open_dataset(ensure_corpus(more.size, int(more.get("seed", 0))), "train").entries
        print(f"[train-asr] + {len(extra)} utterances of corpus {more.size!r} (x{int(more.get('repeat', 1))})", flush=True)
        splits["train"] = splits["train"] + extra * int(more.get("repeat", 1))
    trail = cfg.get("train_max_trailing_silence_s")
    manifests = {s: eou_manifest(e, work / f"{s}_eou.json", trail if s == "train" else None) for s, e in splits.items()}
    tok = work / "tokenizer"
    if init_from:
        from nemo.collections.asr.models import ASRModel
        start = ASRModel.restore_from(str(init_from), map_location="cpu")
        if start.cfg.encoder.get("_target_") != cfg.model.encoder.get("_target_"):
            raise ValueError(f"--init-from {init_from}: its encoder is {start.cfg.encoder.get('_target_')}, profile "
                             f"{profile!r} builds {cfg.model.encoder.get('_target_')}; a new design starts without "
                             "--init-from (and --resume needs its own checkpoint)")
        install_tokenizer(start.tokenizer.tokenizer.serialized_model_proto(), tok)
    elif not (resume and (tok / "tokenizer.model").exists()):
        train_tokenizer([e["text"] for e in splits["train"]], tok, int(cfg.tokenizer.vocab_size))

    pre = cfg.model.preprocessor
    if str(pre.get("_target_", "")).endswith("GlobalMVNMelSpectrogram") and pre.get("mvn_mean") is None:
        if init_from and start.cfg.preprocessor.get("mvn_mean") is not None:   # they belong to the weights
            pre.mvn_mean, pre.mvn_std = start.cfg.preprocessor.mvn_mean, start.cfg.preprocessor.mvn_std
        else:
            from .features import corpus_mvn
            pre.mvn_mean, pre.mvn_std = corpus_mvn(splits["train"], OmegaConf.to_container(pre, resolve=True))
        print(f"[train-asr] global MVN: mean of bins {min(pre.mvn_mean):.2f}..{max(pre.mvn_mean):.2f}, "
              f"std {min(pre.mvn_std):.2f}..{max(pre.mvn_std):.2f}", flush=True)
    density = token_density(tok, splits["train"], float(cfg.model.preprocessor.window_stride) * int(cfg.model.encoder.subsampling_factor))
    print(f"[train-asr] BPE tokens per encoder frame of speech: median {density['median']:.2f}, p95 {density['p95']:.2f}", flush=True)
    if density["p95"] > 0.8:
        warnings.warn(f"tokens per encoder frame p95 = {density['p95']:.2f} > 0.8: CTC/RNNT can barely align; "
                      "raise tokenizer.vocab_size or lower encoder.subsampling_factor", stacklevel=2)
    stage = cfg.get("stage", "hybrid")
    if stage not in ("hybrid", "ctc"):
        raise ValueError(f"profile {profile!r}: stage must be 'hybrid' or 'ctc', not {stage!r}")
    ckpt = ModelCheckpoint(dirpath=work / "checkpoints", filename="{epoch}-{step}-{val_wer:.3f}",
                           monitor="val_wer", mode="min", save_top_k=2, save_last=True)
    audit = shard_audit()          # NeMo's manifests are map-style: under DDP Lightning gives each rank a sampler
    meter = ComputeMeter()
    timer = StepTimer() if measure_steps else None
    trainer = pl.Trainer(**OmegaConf.to_container(cfg.trainer, resolve=True),
                         callbacks=[audit, meter] + ([timer] if timer else [ckpt]),
                         default_root_dir=str(work), logger=pl.loggers.CSVLogger(str(work), name="logs"))
    if stage == "ctc":
        from nemo.collections.asr.models import EncDecCTCModelBPE
        model = EncDecCTCModelBPE(cfg=ctc_model_config(cfg, manifests, tok), trainer=trainer)
    else:
        model = EncDecHybridRNNTCTCBPEEOUModel(cfg=model_config(cfg, manifests, tok), trainer=trainer)
    if init_from:
        state = start.state_dict()
        if stage == "hybrid" and not any(k.startswith("ctc_decoder.") for k in state):
            state = ctc_to_hybrid_state(state)       # from the CTC pre-training stage
        missing = model.load_state_dict(state, strict=False)
        print(f"[train-asr] initialised from {init_from} ({len(missing.missing_keys)} missing keys, "
              f"{len(missing.unexpected_keys)} unexpected)", flush=True)
        del start
    if stage == "hybrid" and cfg.rnnt_loss == "torchaudio":
        use_torchaudio_rnnt_loss(model)
    if cfg.get("hidden_end_s"):
        hide_the_end(model, float(cfg.hidden_end_s), round(float(cfg.model.preprocessor.window_stride)
                                                           * int(cfg.model.preprocessor.sample_rate))
                     * int(cfg.model.encoder.subsampling_factor))
        print(f"[train-asr] the end of each training utterance is hidden: {cfg.hidden_end_s} s more of its own "
              "background, outside the losses", flush=True)
    distiller = None
    if cfg.get("distill"):           # a Whisper teacher's encoder frames as an auxiliary target (asr/distill.py)
        from .distill import WhisperDistiller
        d = cfg.distill
        distiller = WhisperDistiller(str(d.get("teacher", "base")), float(d.get("weight", 1.0)),
                                     int(d.get("max_windows", 1)), int(cfg.threads)).attach(model)
        print(f"[train-asr] distilling Whisper {d.get('teacher', 'base')}'s encoder (weight {d.get('weight', 1.0)}, "
              f"{d.get('max_windows', 1)} window(s) of 30 s per step)", flush=True)
    n_params = sum(p.numel() for n, p in model.named_parameters() if not n.startswith("distill_head."))
    print(f"[train-asr] {name}: {n_params / 1e6:.2f} M parameters, corpus {corpus.name}, "
          f"{len(splits['train'])} training utterances, work dir {work}", flush=True)
    last = work / "checkpoints" / "last.ckpt"
    t0 = time.time()
    trainer.fit(model, ckpt_path=str(ckpt_path) if ckpt_path else None)
    train_s = time.time() - t0
    if timer is not None:
        return {"steps": timer.steps, "n_params": n_params, "precision": str(cfg.trainer.precision),
                "threads": int(cfg.threads), "batch_size": int(cfg.model.train_ds.batch_size)}
    finish_ranks(trainer)               # DDP: rank 0 goes on to export
    model.set_trainer(None)             # so the export's transcription is one process's again (NeMo shards by it)
    best = ckpt.best_model_path or str(last)
    if best and Path(best).exists():
        state = torch.load(best, map_location="cpu", weights_only=False)["state_dict"]
        model.load_state_dict(state)
    if distiller is not None:
        distiller.detach(model)      # the export is the plain NeMo model
    if "forward" in vars(model):
        del model.forward            # hide_the_end's training-only forward
    result = export(model, cfg, out, splits["test"], train_s=train_s, best_ckpt=best, n_params=n_params,
                    steps=trainer.global_step, ranks=audit.summary)
    if ledger:
        charged = plan["charged"] or {"step": int(meter.start_step or 0), "cpu_s": 0.0, "wall_s": 0.0}
        record_run(ledger, model, cfg, result, corpus, n_dev=n_dev, id=plan["id"], parent=plan["parent"],
                   init=plan["how"], profile=Path(profile).stem, overrides=list(overrides), changed=note or plan["how"],
                   steps=int(trainer.global_step) - int(charged["step"]),
                   cpu_hours=(meter.cpu_s - charged["cpu_s"]) / 3600, wall_hours=(meter.wall_s - charged["wall_s"]) / 3600,
                   n_params=n_params, train_utterances=len(splits["train"]))
        from ..files import write_text_atomic     # this checkpoint's compute is in the ledger now
        write_text_atomic(work / "run.json", json.dumps({"id": plan["id"], "parent": plan["parent"], "how": plan["how"],
                                                         "charged": {"step": int(trainer.global_step),
                                                                     "cpu_s": meter.cpu_s, "wall_s": meter.wall_s}}))
    return result


def record_run(ledger_path, model, cfg, export_dir: Path, corpus, n_dev: int = 200, **run) -> dict:
    """Score the exported model on the ledger's dev splits and append the run to the ledger."""
    from ..data.real import RealSpeechUnavailableError
    try:
        sets = ledgers.dev_sets(corpus, n_dev)
    except RealSpeechUnavailableError as e:        # no Asterisk package here: the corpus's dev splits only
        print(f"[train-asr] ledger: {e}; scoring the corpus's dev splits only", flush=True)
        sets = ledgers.dev_sets(corpus, n_dev, real=False)
    dev = ledgers.dev_wer(model, sets)
    if hasattr(model, "ctc_decoder"):       # what the encoder hears without the prediction network's prior
        dev.update(ledgers.dev_wer(model, {k: v for k, v in sets.items() if k in ledgers.CTC_SPLITS}, head="ctc"))
    eou = ledgers.eou_live(model, sets["dev clean"][:ledgers.EOU_N]) if sets.get("dev clean") else {}
    sha = ledgers.sha1_of(Path(export_dir) / "model.nemo")
    entry = ledgers.append(ledger_path, {**run, "cpu_hours": round(run["cpu_hours"], 3),
                                         "wall_hours": round(run["wall_hours"], 3), "dev_wer": dev, "eou_live": eou,
                                         "threads": int(cfg.threads), "precision": str(cfg.trainer.precision),
                                         "corpus": corpus.name, "export": repo_path(export_dir), "model_sha1": sha,
                                         "shipped": Path(export_dir).resolve() == (MODELS / "asr_small").resolve()})
    print(f"[train-asr] ledger {ledger_path}: run {entry['id']} (parent {entry.get('parent')}), {entry['steps']} steps, "
          f"{entry['cpu_hours']:.2f} CPU-h (cumulative {entry['cumulative_cpu_hours']:.2f}); dev WER "
          + ", ".join(f"{k} {100 * v['wer']:.1f} %" for k, v in dev.items()), flush=True)
    return entry


def export(model, cfg, out: Path, test_entries: list[dict], **info) -> Path:
    """model.nemo + config.yaml + metrics.json into ``out`` (written beside, then moved into place)."""
    from omegaconf import OmegaConf
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    if hasattr(model.encoder, "self_contained_cfg"):   # the .nemo carries its weights: restoring needs no package
        from omegaconf import open_dict
        with open_dict(model.cfg):
            model.cfg.encoder.update(model.encoder.self_contained_cfg())
    model.save_to(str(tmp / "model.nemo"))
    OmegaConf.save(cfg, tmp / "config.yaml")
    if (out / ledgers.LEDGER_NAME).is_file():      # the ledger stays with the model folder it describes
        shutil.copy2(out / ledgers.LEDGER_NAME, tmp / ledgers.LEDGER_NAME)
    head = "ctc" if cfg.get("stage", "hybrid") == "ctc" else "rnnt"
    metrics = {"test_split": "test (speakers never heard in training)", "n_test": len(test_entries),
               f"greedy_{head}_wer": evaluate(model, test_entries, [tuple(c) for c in cfg.eval_contexts
                                                                   if list(c) in model.encoder.att_context_size_all]
                                              or [tuple(c) for c in model.encoder.att_context_size_all]),
               **{k: (round(v, 1) if isinstance(v, float) else v) for k, v in info.items()},
               "size_mb": round((tmp / "model.nemo").stat().st_size / 2 ** 20, 2)}
    (tmp / "metrics.json").write_text(json.dumps(metrics, indent=1))
    from ..files import replace_dir
    replace_dir(tmp, out)          # the old export stays until this one is complete
    print(f"[train-asr] exported {out}: " + ", ".join(f"{k} WER {v['wer']:.3f} (clean {v['wer_clean']})"
                                                       for k, v in metrics[f"greedy_{head}_wer"].items()))
    return out


class ShipRefusedError(RuntimeError):
    """An export that may not replace the shipped model (the message says which dev split it loses on)."""


def ship(export_dir: str | os.PathLike, force: bool = False, target: str | os.PathLike | None = None) -> Path:
    """Make a run's export the shipped model (``data/models/asr_small``) when the ledger shows it beats the
    shipped run on every dev split both were scored on, and hears the end of speech live (<EOU>, ``eou_live``)
    not clearly less often: its interval's upper end at least the shipped run's rate (``force``: regardless, and
    said so). The ledger stays with the model folder; the old model is kept until the new one is in place."""
    export_dir = Path(export_dir)
    target = Path(target or MODELS / "asr_small")
    ledger = target / ledgers.LEDGER_NAME
    data = ledgers.read(ledger)
    sha = ledgers.sha1_of(export_dir / "model.nemo")
    run = ledgers.parent_of(data["runs"], sha)
    if run is None:
        raise ShipRefusedError(f"{export_dir}/model.nemo is not in the ledger {ledger}: train it with train-asr first")
    current = ledgers.main_line(data)[-1] if data["runs"] else None
    worse = [s for s, w in run["dev_wer"].items() if current and s in current["dev_wer"]
             and current["dev_wer"][s].get("ci95") and w["wer"] > current["dev_wer"][s]["wer"]]
    worse += [f"<EOU> live at {c}" for c, e in run.get("eou_live", {}).items()     # clearly fewer ends heard live
              if current and c in current.get("eou_live", {}) and e["fired_ci95"][1] < current["eou_live"][c]["fired"]]
    if worse and not force:
        raise ShipRefusedError(f"run {run['id']} is worse than the shipped run {current['id']} on {', '.join(worse)}")
    tmp = target.with_name(f".{target.name}.ship")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in ("model.nemo", "config.yaml", "metrics.json"):
        shutil.copy2(export_dir / name, tmp / name)
    shutil.copy2(ledger, tmp / ledgers.LEDGER_NAME)
    from ..files import replace_dir
    replace_dir(tmp, target)
    ledgers.mark_shipped(target / ledgers.LEDGER_NAME, run["id"], repo_path(target))
    print(f"[ship-asr] run {run['id']} is the shipped model now" + (f" (forced; worse on {', '.join(worse)})" if worse else ""))
    return target


SMOKE_OVERRIDES = ["corpus.size=smoke", "tokenizer.vocab_size=128", "trainer.max_steps=2", "trainer.max_time=null",
                   "trainer.val_check_interval=2", "trainer.enable_progress_bar=false", "model.encoder.n_layers=1",
                   "model.decoding.greedy.max_symbols=1", "eval_contexts=[[70,1]]"]   # untrained: 1 token per frame at most


def default_model(model_path: str | os.PathLike | None = None, smoke_dir: str | os.PathLike = "/tmp/workbench_smoke_asr"):
    """(path, shipped?) of the model a notebook should use: ``model_path`` if given, else the shipped
    ``data/models/asr_small/model.nemo``; without one, a throw-away model trained for two steps on the
    smoke corpus (seconds; recognises nothing), so that a notebook still runs end to end."""
    if model_path:
        return Path(model_path), True
    shipped = MODELS / "asr_small" / "model.nemo"
    if shipped.exists():
        return shipped, True
    smoke = Path(smoke_dir) / "model" / "model.nemo"
    if not smoke.exists():
        train("small", SMOKE_OVERRIDES, out_dir=smoke.parent, work_dir=Path(smoke_dir) / "work")
    return smoke, False


def default_recognizer(model_path=None, context=(70, 1), device=None):
    """(StreamingRecognizer, path, shipped?) over ``default_model(model_path)`` at ``context`` when the model
    was trained with it, else at the model's first context. The benches and the arbitrator share it."""
    from .streaming import StreamingRecognizer, load_model
    path, shipped = default_model(model_path)
    model = load_model(path, device=device)
    trained = [tuple(c) for c in model.encoder.att_context_size_all]
    ctx = tuple(context) if context and tuple(context) in trained else None
    return StreamingRecognizer(model, list(ctx) if ctx else None), path, shipped
