"""The ESPnet backend: a contextual-block conformer (espnet2's ASR task) decoded chunk by chunk by
``Speech2TextStreaming``, behind the same stream interface as the NeMo recogniser: ``new_stream``,
``accept_audio`` -> ``Partial`` events, ``finalize`` -> ``Final`` with an n-best list.

One ``Speech2TextStreaming`` (one model in memory) serves any number of streams: its per-utterance state
(frontend buffer, encoder block states, online beam search) is swapped in and out per stream. Word times of
the final hypotheses come from a CTC forced alignment (torchaudio) over the stream's encoder output.
"""
from __future__ import annotations

import copy
import time
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..audio import MODEL_SAMPLE_RATE, load_audio
from ..events import Final, Hypothesis, Partial, WordTiming
from ..hub import ModelNotAvailableError, hub_reachable

# The small profile's shape; block sizes are in encoder frames (40 ms after conv2d subsampling).
ENCODER_CONF = {"output_size": 128, "attention_heads": 4, "linear_units": 512, "num_blocks": 6,
                "block_size": 40, "hop_size": 16, "look_ahead": 16, "input_layer": "conv2d"}
DECODER_CONF = {"attention_heads": 4, "linear_units": 512, "num_blocks": 2}
FRONTEND_CONF = {"fs": 16000, "n_fft": 512, "hop_length": 160, "win_length": 400, "n_mels": 80}


def token_list(bpemodel: str | os.PathLike) -> list[str]:
    """ESPnet's token list for a SentencePiece model: <blank>, the pieces (the model's <unk> first), <sos/eos>."""
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=str(bpemodel))
    return ["<blank>", "<unk>"] + [sp.id_to_piece(i) for i in range(sp.get_piece_size()) if sp.id_to_piece(i) != "<unk>"] \
        + ["<sos/eos>"]


def _model_args(tokens: Path, bpemodel, encoder_conf: dict | None, decoder_conf: dict | None,
                ctc_weight: float) -> list[str]:
    """espnet2 ASR-task arguments for the tokenizer, frontend, encoder, decoder and CTC weight: shared by the
    model-building helper and the training run, so both describe the same model."""
    def kv(flag, conf):
        return [a for k, v in conf.items() for a in (flag, f"{k}={v}")]
    return ["--token_list", str(tokens), "--token_type", "bpe", "--bpemodel", str(bpemodel),
            "--frontend", "default", *kv("--frontend_conf", FRONTEND_CONF),
            "--encoder", "contextual_block_conformer", *kv("--encoder_conf", {**ENCODER_CONF, **(encoder_conf or {})}),
            "--decoder", "transformer", *kv("--decoder_conf", {**DECODER_CONF, **(decoder_conf or {})}),
            "--model_conf", f"ctc_weight={ctc_weight}"]


def write_config(out_dir: str | os.PathLike, bpemodel: str | os.PathLike, encoder_conf: dict | None = None,
                 decoder_conf: dict | None = None, ctc_weight: float = 0.3, extra: list[str] = ()):
    """Parse an espnet2 ASR task configuration (the task's own parser), build the model from it and write
    ``config.yaml`` + ``tokens.txt`` into ``out_dir``. Returns (args, model)."""
    from espnet2.tasks.asr import ASRTask
    from espnet2.utils.yaml_no_alias_safe_dump import yaml_no_alias_safe_dump
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "tokens.txt").write_text("\n".join(token_list(bpemodel)) + "\n")
    argv = _model_args(out / "tokens.txt", bpemodel, encoder_conf, decoder_conf, ctc_weight) + ["--normalize", "null", *extra]
    args = ASRTask.get_parser().parse_args(argv)
    model = ASRTask.build_model(args)
    with open(out / "config.yaml", "w") as f:
        yaml_no_alias_safe_dump(vars(args), f, indent=4, sort_keys=False)
    return args, model


def _resolved_config(path: Path, root: Path | None = None) -> Path:
    """A shipped config names its tokenizer, token list and feature statistics relative to its folder (our
    export) or to the model's root (espnet's packed layout, ``data/...`` beside ``exp/...``); espnet2 opens them
    relative to the working directory. Resolve them into a temporary copy when needed."""
    import tempfile
    import yaml
    cfg = yaml.safe_load(path.read_text())
    changed = False
    for holder, key in ((cfg, "bpemodel"), (cfg, "token_list"), (cfg.get("normalize_conf") or {}, "stats_file")):
        v = holder.get(key)
        if not isinstance(v, str) or not v or Path(v).is_absolute():
            continue
        for base in (path.parent, root):
            if base is not None and (base / v).exists():
                holder[key] = str((base / v).resolve())
                changed = True
                break
    if not changed:
        return path
    fd, tmp = tempfile.mkstemp(suffix=".yaml", prefix="espnet_config_")
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(cfg, f, sort_keys=False)
    return Path(tmp)


def _from_meta(root: Path) -> tuple[Path, Path]:
    """(config, weights) named by an espnet ``meta.yaml`` (written by espnet2's ``pack``; also the layout of
    ESPnet models on the Hugging Face hub), paths relative to ``root``."""
    import yaml
    meta = yaml.safe_load((root / "meta.yaml").read_text()) or {}
    try:
        return root / meta["yaml_files"]["asr_train_config"], root / meta["files"]["asr_model_file"]
    except (KeyError, TypeError):
        raise ModelNotAvailableError(f"{root / 'meta.yaml'} names no asr_train_config / asr_model_file: "
                                     f"not an ESPnet ASR model") from None


def resolve_pretrained(name_or_path: str | os.PathLike, cache_dir: str | os.PathLike | None = None
                       ) -> tuple[Path, Path, Path | None]:
    """(config.yaml, model.pth, root) of an ESPnet ASR model given as
    - a folder with ``config.yaml`` + ``model.pth`` (this project's export),
    - a folder with ``meta.yaml`` (espnet's packed layout: an unpacked archive, a Hugging Face snapshot),
    - an archive made by espnet2's ``pack`` (``.zip``, ``.tar.gz``, ...: the espnet_model_zoo format), unpacked
      once into ``cache_dir`` with espnet2's ``unpack``,
    - a model tag on the Hugging Face hub (e.g. ``pyf98/librispeech_conformer``), fetched with huggingface_hub.
    Offline, a tag fails within seconds with a clear message, never a hang."""
    p = Path(name_or_path)
    if p.is_dir():
        if (p / "config.yaml").is_file() and (p / "model.pth").is_file():
            return p / "config.yaml", p / "model.pth", None
        if (p / "meta.yaml").is_file():
            return (*_from_meta(p), p)
        raise ModelNotAvailableError(f"{p} holds neither config.yaml + model.pth nor an espnet meta.yaml")
    archive = p.name.endswith((".zip", ".tar", ".tgz", ".tar.gz", ".tbz2", ".tar.bz2", ".txz", ".tar.xz"))
    looks_like_tag = str(name_or_path).count("/") == 1 and not str(name_or_path).startswith(".")   # owner/name
    if archive or p.is_file() or p.is_absolute() or not looks_like_tag:
        if not p.is_file():
            raise ModelNotAvailableError(f"no ESPnet model at {p}")
        if not archive:
            raise ModelNotAvailableError(f"{p} is not an ESPnet model folder or a packed archive (.zip, .tar.gz)")
        from espnet2.main_funcs.pack_funcs import unpack
        from .recipe import CACHE
        out = Path(cache_dir or CACHE / "espnet_unpacked") / p.name.split(".")[0]
        files = unpack(p, out)
        return Path(files["asr_train_config"]), Path(files["asr_model_file"]), out
    tag = str(name_or_path)
    if not hub_reachable(repo=tag):
        raise ModelNotAvailableError(
            f"ESPnet model tag {tag!r} would be downloaded from the Hugging Face hub, which cannot be reached "
            f"from here. Download it where the hub is reachable (huggingface_hub.snapshot_download) and pass "
            f"the local folder, or an archive packed by espnet2, instead.")
    from huggingface_hub import snapshot_download
    root = Path(snapshot_download(tag, cache_dir=cache_dir))
    return (*_from_meta(root), root)


@dataclass
class EspnetStream:
    stream_id: str
    frontend_states: dict | None = None
    encoder_states: dict | None = None
    beam: object = None
    n_samples: int = 0
    step: int = 0
    encoder_out: list = field(default_factory=list)   # (frames, d) blocks, for the final word alignment
    finished: bool = False


def guard_repetitions(ids: list[int], max_repeats: int = 2, max_n: int = 4) -> list[int]:
    """``ids`` with every run of an n-gram (n <= ``max_n``) repeated back to back more than ``max_repeats``
    times cut to ``max_repeats`` copies. An attention decoder that has lost the audio loops ("onil onil onil
    ..."); people rarely say the same words three times running, and a loop costs one error per repeat."""
    out = list(ids)
    changed = True
    while changed:
        changed = False
        for n in range(1, max_n + 1):
            i = 0
            while i + n * (max_repeats + 1) <= len(out):
                gram = out[i:i + n]
                k = 1
                while out[i + k * n:i + (k + 1) * n] == gram:
                    k += 1
                if k > max_repeats:
                    del out[i + max_repeats * n:i + k * n]
                    changed = True
                i += 1
    return out


class EspnetStreamingRecognizer:
    """Contextual-block streaming ASR from an espnet2 ``config.yaml`` + ``model.pth``."""

    def __init__(self, asr_train_config: str | os.PathLike, asr_model_file: str | os.PathLike,
                 beam_size: int = 4, nbest: int = 3, ctc_weight: float = 0.3, device: str | None = None,
                 root: str | os.PathLike | None = None, reranker=None, max_tokens_per_s: float = 12.0):
        """``reranker`` (``Final -> Final``, as for the NeMo recogniser): the final n-best is reordered by it,
        the milliseconds it took appended to ``rerank_ms``. Every final hypothesis is guarded against loops
        (``guard_repetitions``) and cut to ``max_tokens_per_s`` tokens per second of audio (a person says
        about six of these pieces a second)."""
        import yaml
        from espnet2.bin.asr_inference_streaming import Speech2TextStreaming
        for p in (asr_train_config, asr_model_file):
            if not Path(p).is_file():
                raise ModelNotAvailableError(f"no ESPnet checkpoint file at {p}")
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        asr_train_config = _resolved_config(Path(asr_train_config), Path(root) if root else None)
        cfg = yaml.safe_load(Path(asr_train_config).read_text()) or {}
        encoder = cfg.get("encoder")
        if encoder not in ("contextual_block_conformer", "contextual_block_transformer"):
            raise ModelNotAvailableError(f"{asr_model_file}: encoder {encoder!r} does not stream block by block; "
                                         f"Speech2TextStreaming needs a contextual_block_conformer/transformer")
        self.s2t = Speech2TextStreaming(asr_train_config=str(asr_train_config), asr_model_file=str(asr_model_file),
                                        device=device, beam_size=beam_size, nbest=nbest, ctc_weight=ctc_weight)
        self.model = self.s2t.asr_model
        # encoder frame = feature hop x the input layer's subsampling (a pretrained model may differ from ours)
        hop = (cfg.get("frontend_conf") or {}).get("hop_length", 128)          # espnet's DefaultFrontend default
        layer = (cfg.get("encoder_conf") or {}).get("input_layer", "conv2d")
        self.frame_s = hop / MODEL_SAMPLE_RATE * {"conv2d": 4, "conv2d6": 6, "conv2d8": 8}.get(layer, 1)
        self.block = {k: int(cfg["encoder_conf"][k]) for k in ("block_size", "hop_size", "look_ahead")}
        from .streaming import model_lock
        self.lock = model_lock(self.s2t)     # the search state is swapped into this shared object per step
        if reranker is not None and nbest < 2:
            raise ValueError("a reranker needs an n-best list to reorder: pass nbest >= 2")
        self.reranker, self.rerank_ms = reranker, []
        self.max_tokens_per_s = max_tokens_per_s

    @property
    def latency_ms(self) -> float:
        """Nominal mean algorithmic latency per encoder frame, counted as a full NeMo chunk's would be: a
        block emits its ``hop_size`` frames once ``look_ahead`` more frames have arrived, so the k-th of them
        waits hop_size - k + look_ahead + 1 frames."""
        return 1000 * self.frame_s * (self.block["look_ahead"] + (self.block["hop_size"] + 1) / 2)

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, cache_dir: str | os.PathLike | None = None, **kw):
        """Load by folder, packed archive or Hugging Face tag (``resolve_pretrained``); ``kw`` as ``__init__``."""
        config, weights, root = resolve_pretrained(name_or_path, cache_dir)
        return cls(config, weights, root=root, **kw)

    def new_stream(self, stream_id: str = "0") -> EspnetStream:
        beam = copy.copy(self.s2t.beam_search)      # shares the scorers (the model), not the search state
        beam.reset()
        return EspnetStream(stream_id, beam=beam)

    def _ids_text(self, ids: list[int]) -> str:
        ids = [i for i in ids if i not in (0, self.model.sos, self.model.eos)]
        return self.s2t.tokenizer.tokens2text(self.s2t.converter.ids2tokens(ids)) if ids else ""

    def _step(self, st: EspnetStream, x: np.ndarray, final: bool):
        s2t = self.s2t
        with self.lock:
            return self._step_locked(s2t, st, x, final)

    def _step_locked(self, s2t, st: EspnetStream, x: np.ndarray, final: bool):
        s2t.frontend_states, s2t.encoder_states, s2t.beam_search = st.frontend_states, st.encoder_states, st.beam
        try:
            with torch.inference_mode():
                feats, feats_len, st.frontend_states = s2t.apply_frontend(torch.from_numpy(x), st.frontend_states,
                                                                          is_final=final)
                if feats is None:
                    return None, []
                enc, _, st.encoder_states = self.model.encoder(feats, feats_len, st.encoder_states,
                                                                is_final=final, infer_mode=True)
                nbest = s2t.beam_search(x=enc[0], maxlenratio=s2t.maxlenratio, minlenratio=s2t.minlenratio,
                                        is_final=final)
            return enc[0], nbest
        finally:
            st.beam = s2t.beam_search

    def accept_audio(self, st: EspnetStream, samples: np.ndarray, sample_rate: int = MODEL_SAMPLE_RATE) -> list:
        if st.finished:
            raise RuntimeError(f"stream {st.stream_id} is finalised; start a new one")
        if sample_rate != MODEL_SAMPLE_RATE:
            raise ValueError(f"stream {st.stream_id}: audio must arrive at {MODEL_SAMPLE_RATE} Hz, got {sample_rate}")
        x = load_audio(np.asarray(samples), sample_rate) if len(samples) else np.zeros(0, np.float32)
        if not len(x):
            return []
        st.n_samples += len(x)
        enc, _ = self._step(st, x, final=False)
        if enc is None or not len(enc):
            return []
        st.step += 1
        st.encoder_out.append(enc.cpu())
        hyps = st.beam.running_hyps
        text, tokens = "", []
        if hyps is not None and len(hyps.score):
            b = int(torch.argmax(hyps.score))
            tokens = [int(t) for t in hyps.yseq[b, :int(hyps.length[b])].tolist()]
            text = self._ids_text(tokens)
        frames = sum(len(e) for e in st.encoder_out)
        return [Partial(st.stream_id, text, tokens, st.n_samples / MODEL_SAMPLE_RATE, st.step, frames,
                        encoder_output=enc.cpu().numpy(), eou_prob=None)]

    def finalize(self, st: EspnetStream) -> list:
        """The last block, then the n-best list (scores from the beam search, word times from a CTC
        forced alignment of each hypothesis over the stream's encoder output)."""
        enc, nbest = self._step(st, np.zeros(0, np.float32), final=True)
        st.finished = True
        if enc is not None and len(enc):
            st.encoder_out.append(enc.cpu())
        out, seen = [], set()
        cap = max(1, int(self.max_tokens_per_s * st.n_samples / MODEL_SAMPLE_RATE))
        for h in nbest[: self.s2t.nbest]:
            ids = guard_repetitions([int(t) for t in h.yseq[1:-1].tolist() if int(t) != 0])[:cap]
            if tuple(ids) in seen:            # one entry per token sequence, as the NeMo n-best
                continue
            seen.add(tuple(ids))
            out.append(Hypothesis(self._ids_text(ids), float(h.score), ids, self._word_times(st, ids)))
        final = Final(st.stream_id, out, st.n_samples / MODEL_SAMPLE_RATE)
        if self.reranker is not None:
            t0 = time.perf_counter()
            final = self.reranker(final)
            self.rerank_ms.append(1000 * (time.perf_counter() - t0))
        return [final]

    def _word_times(self, st: EspnetStream, ids: list[int]) -> list[WordTiming]:
        import torchaudio
        if not ids or not st.encoder_out:
            return []
        enc = torch.cat(st.encoder_out)[None]
        with torch.inference_mode():
            logp = self.model.ctc.log_softmax(enc)
        if logp.shape[1] < len(ids):
            return []
        path, _ = torchaudio.functional.forced_align(logp, torch.tensor([ids], dtype=torch.int32), blank=0)
        path = path[0].tolist()
        tokens = self.s2t.converter.ids2tokens(ids)
        words, k, prev = [], -1, 0
        for t, lab in enumerate(path):
            if lab != 0 and (t == 0 or path[t - 1] != lab or prev == 0):
                k += 1
                piece = tokens[k]
                if piece.startswith("▁") or not words:
                    words.append([piece.lstrip("▁"), t, t])
                else:
                    words[-1][0] += piece
                    words[-1][2] = t
            elif lab != 0 and words:
                words[-1][2] = t
            prev = lab
        return [WordTiming(w, round(a * self.frame_s, 3), round((b + 1) * self.frame_s, 3)) for w, a, b in words if w]


# -- training through espnet2's task API ------------------------------------------------------------------

def kaldi_dir(entries: list[dict], out_dir: str | os.PathLike) -> Path:
    """``wav.scp`` and ``text`` (espnet2's data-directory format) for corpus entries, sorted by id."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = sorted((e["id"], str(Path(e["audio_filepath"]).resolve()), e["text"]) for e in entries)
    (out / "wav.scp").write_text("".join(f"{i} {p}\n" for i, p, _ in rows))
    (out / "text").write_text("".join(f"{i} {t}\n" for i, _, t in rows))
    return out


def train_espnet(corpus_size: str = "default", out_dir: str | os.PathLike | None = None,
                 work_dir: str | os.PathLike | None = None, max_epoch: int = 10, iters_per_epoch: int | None = None,
                 batch_size: int = 16, vocab_size: int = 256, encoder_conf: dict | None = None,
                 decoder_conf: dict | None = None, extra: list[str] = (), n_eval: int | None = None,
                 train_filter: str = "clean", n_dev: int | None = 300, ctc_weight: float = 0.3,
                 init_from: str | os.PathLike | None = None, lr: float = 1e-3, warmup_steps: int = 500,
                 exp_name: str = "exp", resume: bool = False,
                 tokenizer_from: str | os.PathLike | None = None) -> Path:
    """Train the contextual-block conformer with ``espnet2.tasks.asr.ASRTask.main`` on the corpus: stats
    collection (global mean/variance of the features), then training; export config.yaml (paths made
    relative), model.pth, tokenizer and metrics.json (streaming beam-search WER on the test split, all and clean).

    ``train_filter="clean"`` and 256 BPE pieces are the NeMo small profile's choices, so the two backends'
    WERs compare like for like; ``n_dev`` caps the validation set (espnet2 scores it after every epoch).
    ``init_from`` (a ``model.pth``) starts a second stage from earlier weights with a fresh warmup, in its own
    ``exp_name`` folder beside the first (same tokenizer and statistics); ``ctc_weight`` is the training loss's
    CTC share (espnet2's ``model_conf``). ``tokenizer_from`` (a SentencePiece ``bpe.model``, e.g. a shipped
    export's) keeps that tokenizer instead of training one on this corpus's text, so ``init_from`` an export
    trained on another corpus loads every weight, the output layers included (fine-tuning on a new corpus)."""
    import json
    import shutil
    import time
    import yaml
    from espnet2.tasks.asr import ASRTask
    from ..data import ensure_corpus, is_clean, open_dataset
    from .recipe import CACHE, MODELS
    from .tokenizer import train_tokenizer
    out = Path(out_dir or MODELS / "asr_espnet_small")
    work = Path(work_dir or CACHE / "asr_espnet_small")
    work.mkdir(parents=True, exist_ok=True)
    corpus = ensure_corpus(corpus_size)
    splits = {s: open_dataset(corpus, s).entries for s in ("train", "dev", "test")}
    if train_filter == "clean":
        splits["train"] = [e for e in splits["train"] if is_clean(e)]
    elif train_filter != "all":
        raise ValueError(f"train_filter must be 'all' or 'clean', not {train_filter!r}")
    if n_dev:
        splits["dev"] = splits["dev"][:n_dev]
    dirs = {s: kaldi_dir(e, work / "data" / s) for s, e in splits.items()}
    if tokenizer_from:
        if not Path(tokenizer_from).is_file():
            raise FileNotFoundError(f"--tokenizer-from: no SentencePiece model at {tokenizer_from}")
        (work / "tokenizer").mkdir(parents=True, exist_ok=True)
        bpe = work / "tokenizer" / "tokenizer.model"
        shutil.copy(tokenizer_from, bpe)
        import sentencepiece as spm
        n = spm.SentencePieceProcessor(model_file=str(bpe)).get_piece_size()
        if n != vocab_size:
            raise ValueError(f"--tokenizer-from {tokenizer_from}: {n} pieces, not {vocab_size}")
    else:
        bpe = train_tokenizer([e["text"] for e in splits["train"]], work / "tokenizer", vocab_size) / "tokenizer.model"
    (work / "tokens.txt").write_text("\n".join(token_list(bpe)) + "\n")
    common = _model_args(work / "tokens.txt", bpe, encoder_conf, decoder_conf, ctc_weight) + [
              "--ngpu", str(int(torch.cuda.is_available())), "--num_workers", "1",
              "--train_data_path_and_name_and_type", f"{dirs['train']}/wav.scp,speech,sound",
              "--train_data_path_and_name_and_type", f"{dirs['train']}/text,text,text",
              "--valid_data_path_and_name_and_type", f"{dirs['dev']}/wav.scp,speech,sound",
              "--valid_data_path_and_name_and_type", f"{dirs['dev']}/text,text,text"]
    stats = work / "stats"
    if not (stats / "train" / "feats_stats.npz").exists():
        ASRTask.main(cmd=common + ["--collect_stats", "true", "--normalize", "null", "--output_dir", str(stats),
                                   "--train_shape_file", f"{dirs['train']}/wav.scp",
                                   "--valid_shape_file", f"{dirs['dev']}/wav.scp", "--batch_size", str(batch_size)])
    n_tokens = len((work / "tokens.txt").read_text().split())
    for part in ("train", "valid"):     # as espnet's asr.sh: token shapes get the vocabulary size appended
        rows = (stats / part / "text_shape").read_text().splitlines()
        (stats / part / "text_shape.bpe").write_text("".join(f"{r},{n_tokens}\n" for r in rows if r.strip()))
    exp = work / exp_name      # below, lr goes as 1.000000e-03: YAML would read "1e-3" as text
    init = []
    if init_from:
        if not Path(init_from).is_file():
            raise FileNotFoundError(f"--init-from: no ESPnet model.pth at {init_from}")
        init = ["--init_param", str(Path(init_from).resolve())]
    t0 = time.time()
    ASRTask.main(cmd=common + [
        "--normalize", "global_mvn", "--normalize_conf", f"stats_file={stats / 'train' / 'feats_stats.npz'}",
        "--train_shape_file", str(stats / "train" / "speech_shape"), "--train_shape_file", str(stats / "train" / "text_shape.bpe"),
        "--valid_shape_file", str(stats / "valid" / "speech_shape"), "--valid_shape_file", str(stats / "valid" / "text_shape.bpe"),
        "--output_dir", str(exp), "--fold_length", "80000", "--fold_length", "150", "--batch_type", "folded", "--batch_size", str(batch_size), "--max_epoch", str(max_epoch),
        *(["--num_iters_per_epoch", str(iters_per_epoch)] if iters_per_epoch else []),
        "--optim", "adam", "--optim_conf", f"lr={lr:.6e}", "--scheduler", "warmuplr", "--scheduler_conf", f"warmup_steps={warmup_steps}",
        "--grad_clip", "5", "--best_model_criterion", "valid,acc,max", "--keep_nbest_models", "1",
        "--num_att_plot", "0",             # attention plots took ~40 s of every ~2.7 min epoch on 2 cores
        "--resume", "true" if resume else "false", *init, *extra])
    train_s = time.time() - t0

    # export: the config with the tokenizer and stats beside it (relative paths), the best weights
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    shutil.copy(bpe, tmp / "bpe.model")
    shutil.copy(stats / "train" / "feats_stats.npz", tmp / "feats_stats.npz")
    cfg = yaml.safe_load((exp / "config.yaml").read_text())
    cfg["bpemodel"] = "bpe.model"
    cfg["normalize_conf"]["stats_file"] = "feats_stats.npz"
    for k in [k for k in cfg if "data_path" in k or "shape_file" in k]:
        cfg[k] = []
    cfg["output_dir"] = "."
    cfg["init_param"] = []           # a path on the training machine; metrics.json keeps it as init_from
    (tmp / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    best = exp / "valid.acc.best.pth"
    shutil.copy(best if best.exists() else exp / "latest.pth", tmp / "model.pth")
    rec = EspnetStreamingRecognizer(tmp / "config.yaml", tmp / "model.pth", beam_size=4, nbest=1)
    test = splits["test"][:n_eval] if n_eval else splits["test"]
    metrics = {"test_split": "test (speakers never heard in training)", "n_test": len(test),
               "streaming_beam4_wer": evaluate_streaming(rec, test), "train_s_this_run": round(train_s, 1),
               "max_epoch": max_epoch, "iters_per_epoch": iters_per_epoch, "batch_size": batch_size,
               "ctc_weight": ctc_weight, "lr": lr, "warmup_steps": warmup_steps,
               "init_from": str(init_from) if init_from else None,
               "tokenizer_from": str(tokenizer_from) if tokenizer_from else None,
               "train_filter": train_filter, "n_train": len(splits["train"]), "vocab_size": vocab_size,
               "n_params": sum(p.numel() for p in rec.model.parameters()),
               "block": {k: ENCODER_CONF[k] for k in ("block_size", "hop_size", "look_ahead")}}
    (tmp / "metrics.json").write_text(json.dumps(metrics, indent=1))
    from ..files import replace_dir
    replace_dir(tmp, out)          # the old export stays until this one is complete
    print(f"[train-asr espnet] exported {out}: WER {metrics['streaming_beam4_wer']['wer']:.3f}", flush=True)
    return out


def frame_waits(partials, frame_s: float) -> list[float]:
    """Per emitted encoder frame: the audio (s) that had to arrive after the frame's end before its partial
    came out (the measured latency of a streaming recogniser)."""
    waits = []
    for p in partials:
        enc = getattr(p, "encoder_output", None)
        if enc is not None and len(enc):
            first = p.encoder_frames - len(enc)
            waits += [p.audio_end - (first + j) * frame_s for j in range(1, len(enc) + 1)]
    return waits


def evaluate_streaming(rec: "EspnetStreamingRecognizer", entries: list[dict], frame_ms: int = 30) -> dict:
    """WER (jiwer), real-time factor and latency of chunk-by-chunk decoding over ``entries``. Latency twice:
    ``latency_ms``, the encoder's nominal wait counted as NeMo's fixed lookaheads are (``rec.latency_ms``), and
    ``measured_wait_ms``, the mean over emitted encoder frames of the audio that had to arrive after a frame's
    end before its partial came out (front-end windows and subsampling context included; the flush at the
    end of each recording excluded)."""
    import time
    import jiwer
    from ..data import is_clean
    hyps, audio_s, waits, t0 = [], 0.0, [], time.time()
    step = MODEL_SAMPLE_RATE * frame_ms // 1000
    for e in entries:
        x = load_audio(e["audio_filepath"])
        audio_s += len(x) / MODEL_SAMPLE_RATE
        st = rec.new_stream(e.get("id", "0"))
        for a in range(0, len(x), step):
            waits += frame_waits(rec.accept_audio(st, x[a:a + step]), rec.frame_s)
        final = rec.finalize(st)[-1]
        hyps.append(final.nbest[0].text if final.nbest else "")
    rtf = (time.time() - t0) / max(audio_s, 1e-9)
    clean = [(e["text"], h) for e, h in zip(entries, hyps) if is_clean(e)]
    return {"wer": round(float(jiwer.wer([e["text"] for e in entries], hyps)), 4),
            "wer_clean": round(float(jiwer.wer(*map(list, zip(*clean)))), 4) if clean else None,
            "n_clean": len(clean), "rtf": round(rtf, 4), "latency_ms": round(rec.latency_ms, 1),
            "measured_wait_ms": round(1000 * float(np.mean(waits)), 1) if waits else None}
