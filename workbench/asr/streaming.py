"""Cache-aware streaming recognition over a NeMo FastConformer: audio in, Partial/EndOfUtterance/Final out.

Each stream keeps its own audio, features, encoder caches and partial RNNT hypothesis, so several
streams can be stepped together in one batch (``step_batch``), at different positions in their audio.

Features are computed incrementally, and a feature frame is released only once the audio its STFT window
covers has arrived, so the frames (and therefore the chunks) are exactly the ones an offline pass over
the whole recording computes. Chunking follows NeMo's ``CacheAwareStreamingAudioBuffer``: the first chunk
has ``chunk_size[0]`` frames, then ``shift_size[1]`` new frames each with ``pre_encode_cache_size`` frames of
left context for the subsampling convolutions.

Public interface (``workbench.asr.protocol``): every backend has ``new_stream`` / ``accept_audio`` /
``finalize``; this one also the batch-level steps the frame batcher and the lookahead cascade build on
(``release_features``, ``next_chunk``, ``encode``, ``step_batch``, ``run_chunks``, ``result``), with the
attention context passed per call.

Threads: a loaded model may be shared by any number of recognisers and threads. Every call that touches
the shared encoder (its current attention context is module state in NeMo) holds that model's lock, and
the RNNT decoding object is the recogniser's own, so no call changes what another recogniser decodes with.
A ``StreamState`` belongs to one caller at a time; a ``FrameBatcher`` to one thread (``LiveBatcher``: one
event loop).
"""
from __future__ import annotations

import os
import threading
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from ..audio import MODEL_SAMPLE_RATE, load_audio
from ..events import EndOfUtterance, Final, Hypothesis, Partial, WordTiming
from ..hub import ModelNotAvailableError, hub_reachable  # noqa: F401  (the loaders' typed error, re-exported)
from .tokenizer import strip_special


def load_model(name_or_path: str | os.PathLike, device: str | None = None):
    """A NeMo ASR model from a ``.nemo`` file, or by name (``nvidia/...``) through NeMo's own
    ``from_pretrained``. Offline, a name fails within seconds with a clear message, never a hang."""
    from nemo.collections.asr.models import ASRModel
    from ..logs import quiet_if_interactive
    from . import features, whisper_encoder  # noqa: F401  (our models' preprocessor: NeMo must be allowed to build it; the Whisper encoder too)
    quiet_if_interactive()
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    p = Path(name_or_path)
    if p.suffix == ".nemo" or p.exists():
        if not p.is_file():
            raise ModelNotAvailableError(f"no checkpoint at {p}")
        model = ASRModel.restore_from(str(p), map_location=device)
    else:
        if not hub_reachable():
            raise ModelNotAvailableError(
                f"{name_or_path!r} would be downloaded from the Hugging Face hub, which cannot be reached from "
                f"here. Download it where the hub is reachable and pass the local .nemo path instead.")
        model = ASRModel.from_pretrained(str(name_or_path), map_location=device)
    return model.eval()


class Chunk(NamedTuple):
    """One encoder step's input for one stream: features with their pre-encode left context."""
    features: torch.Tensor        # (1, n_mels, T)
    length: int                   # valid frames of ``features``
    drop_extra: int               # pre-encoded outputs to drop (already emitted)
    is_last: bool                 # the stream's last chunk: keep every output


_LOCKS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def model_lock(model) -> threading.RLock:
    """The lock of a loaded model: held by every call that sets the shared encoder's context and steps it."""
    with _LOCKS_GUARD:
        lock = _LOCKS.get(model)
        if lock is None:
            lock = _LOCKS[model] = threading.RLock()
        return lock


def _rnnt_decoding(model, cfg):
    """A fresh RNNT decoding object over the model's decoder and joint (what ``change_decoding_strategy``
    would build, without replacing the model's own)."""
    from nemo.collections.asr.parts.submodules.rnnt_decoding import RNNTBPEDecoding
    return RNNTBPEDecoding(decoding_cfg=cfg, decoder=model.decoder, joint=model.joint, tokenizer=model.tokenizer)


@dataclass
class StreamState:
    stream_id: str
    audio: list = field(default_factory=list)     # received sample blocks not yet needed by released frames
    audio_start: int = 0                          # stream sample index of the first kept sample
    n_samples: int = 0
    feats: torch.Tensor | None = None             # (n_mels, frames released so far)
    buffer_idx: int = 0                           # feature frames consumed by chunks
    step: int = 0
    cache: tuple | None = None                    # (last_channel, last_time, last_channel_len), batch dim 1
    hyp: object = None                            # NeMo partial Hypothesis
    encoder_frames: int = 0
    eou_sent: bool = False
    done: bool = False                            # the last chunk has been run
    finished: bool = False                        # finalised: no more audio accepted
    heard: int = 0                                # samples the last chunk run needed (its audio_end)
    encoded: list = field(default_factory=list)   # encoder output per step (d_model, k): kept for beam n-best
    # dynamic lookahead (workbench.asr.lookahead): committed chunks, ladder rung, pending probes
    decisions: list = field(default_factory=list)
    level: int = 0
    probes: list = field(default_factory=list)


def trained_contexts(model) -> list[list[int]]:
    """The attention contexts ([left, right] in encoder frames) a NeMo cache-aware model was trained with."""
    return [[int(v) for v in c] for c in model.encoder.att_context_size_all]


class StreamingRecognizer:
    """One NeMo cache-aware model at one attention context (lookahead), any number of streams."""

    def __init__(self, model, att_context: tuple[int, int] | list[int] | None = None, nbest: int = 1,
                 beam_strategy: str = "malsd_batch", reranker=None):
        """``nbest`` > 1: the stream keeps its encoder output and ``result`` runs NeMo's RNNT beam search
        (``beam_strategy``, beam ``nbest``, every hypothesis returned) over it: the n-best list a reranker
        reads. The partials stay greedy (what streams live); ``nbest=1`` is greedy throughout.
        ``reranker`` (a callable ``Final -> Final``, e.g. ``workbench.rescoring.LogLinearReranker``): every
        result, streamed, batched or flushed at a pause, is the reranked one; the milliseconds each call took
        are appended to ``rerank_ms``."""
        from omegaconf import OmegaConf
        if int(nbest) < 1:
            raise ValueError(f"nbest must be >= 1, got {nbest}")
        if reranker is not None and int(nbest) < 2:
            raise ValueError("a reranker needs an n-best list to reorder: pass nbest >= 2")
        self.nbest = int(nbest)
        self.reranker = reranker
        self.rerank_ms: list[float] = []
        self.model = model.eval()
        enc = model.encoder
        self.contexts = [tuple(int(v) for v in c) for c in enc.att_context_size_all]
        if att_context is not None and tuple(att_context) not in self.contexts:
            raise ValueError(f"att_context {list(att_context)} is not one the model was trained with: "
                             f"{[list(c) for c in self.contexts]}")
        # NeMo keeps one current context on the encoder; the streaming sizes of every trained context are
        # read once (under the model's lock, the encoder's own context restored) so that each call can pass
        # its context: a policy may change it from one chunk to the next (dynamic lookahead).
        self.lock = model_lock(model)
        self.cfgs = {}
        with self.lock:
            current = [int(v) for v in enc.att_context_size]
            for c in self.contexts:
                enc.set_default_att_context_size(list(c))
                self.cfgs[c] = enc.streaming_cfg
            enc.set_default_att_context_size(current)
        self.att_context = list(att_context) if att_context is not None else list(self.contexts[0])
        self.cfg = self.cfgs[tuple(self.att_context)]
        self._chunk_frames: dict = {}
        # The recogniser's own RNNT decoding (the model's is left as it is): the EOU models switch on
        # timestamps, whose dict form breaks partial-hypothesis merging across chunks in NeMo 3.0; token
        # frames come from the alignments instead.
        dec = OmegaConf.to_container(model.cfg.decoding, resolve=True)
        dec.update(compute_timestamps=False, preserve_alignments=True)
        self.decoding = _rnnt_decoding(model, OmegaConf.create(dec))
        self.beam_decoding = None
        if self.nbest > 1:
            beam = dict(OmegaConf.to_container(model.cfg.decoding, resolve=True))
            beam.update(strategy=beam_strategy, compute_timestamps=False, preserve_alignments=False,
                        beam={"beam_size": self.nbest, "return_best_hypothesis": False, "score_norm": True,
                              "allow_cuda_graphs": False})
            beam.pop("greedy", None)
            self.beam_decoding = _rnnt_decoding(model, OmegaConf.create(beam))
        pre = model.preprocessor.featurizer
        self.hop = int(pre.hop_length)
        self.half_window = int(pre.n_fft) // 2
        self.frame_s = self.hop / MODEL_SAMPLE_RATE * enc.subsampling_factor   # one encoder frame, seconds
        self.eou_id = getattr(model, "eou_token", None)
        self.eob_id = getattr(model, "eob_token", None)
        pre_encode = getattr(enc, "pre_encode", None)      # the Whisper encoder has its own front end
        self.sampling_frames = pre_encode.get_sampling_frames() if hasattr(pre_encode, "get_sampling_frames") else None
        self.device = next(model.parameters()).device

    # -- what other rooms read of the model, so that none reaches into NeMo's internals ----------------------
    @property
    def tokenizer(self):
        """The model's tokenizer (NeMo's SentencePiece wrapper: ``text_to_ids``, ``ids_to_tokens``...)."""
        return self.model.tokenizer

    @property
    def vocab_size(self) -> int:
        """Token ids below this are the vocabulary; RNNT/CTC blank is ``vocab_size``."""
        return int(self.model.tokenizer.vocab_size)

    # -- sizes (NeMo gives [first, later] lists for chunked_limited) ---------------------------------
    @staticmethod
    def _size(v, first: bool) -> int:
        return int(v[0] if first else v[1]) if isinstance(v, (list, tuple)) else int(v)

    def chunk_frames(self, context=None) -> tuple[tuple[int, int], tuple[int, int]]:
        """Feature frames ((first chunk, its shift), (later chunks, their shift)) at ``context`` (read once per
        context: the batcher asks on every frame)."""
        ctx = tuple(self.att_context) if context is None else tuple(context)
        if ctx not in self._chunk_frames:
            cfg = self.cfgs[ctx]
            self._chunk_frames[ctx] = ((self._size(cfg.chunk_size, True), self._size(cfg.shift_size, True)),
                                       (self._size(cfg.chunk_size, False), self._size(cfg.shift_size, False)))
        return self._chunk_frames[ctx]

    def pending_chunks(self, st: "StreamState", context=None) -> int:
        """Chunks the stream's audio completes that have not run yet (released features or not)."""
        first, later = self.chunk_frames(context)
        n, idx, count = self.feature_frames(st), st.buffer_idx, 0
        while True:
            size, shift = first if idx == 0 else later
            if n < idx + size:
                return count
            count, idx = count + 1, idx + shift

    @property
    def lookahead_s(self) -> float:
        return self.att_context[1] * self.frame_s

    @property
    def chunk_s(self) -> float:
        return self._size(self.cfg.shift_size, False) * self.hop / MODEL_SAMPLE_RATE

    # -- streams ------------------------------------------------------------------------------------
    def new_stream(self, stream_id: str = "0") -> StreamState:
        st = StreamState(stream_id)
        c = self.model.encoder.get_initial_cache_state(batch_size=1, device=self.device)
        st.cache = tuple(c)
        return st

    def feature_frames(self, st: StreamState, final: bool = False) -> int:
        """Feature frames the stream's audio allows: live, only frames whose window the audio covers; at the
        end, the frames NeMo's preprocessor counts as valid (``n // hop``: its centred STFT makes one more,
        half over the padding, which the offline pass masks; streaming it changed the last encoder frame
        whenever ``n // hop`` was odd, and added one when it was 1 mod 8)."""
        n = st.n_samples
        if n == 0:
            return 0
        return n // self.hop if final else max(0, (n - self.half_window) // self.hop + 1)

    def _take_segment(self, st: StreamState, final: bool):
        """The audio segment whose features release the stream's next frames (None: nothing new); the
        stream keeps only what the next release can need (3 frames before the frames released now)."""
        have = 0 if st.feats is None else st.feats.shape[1]
        total = self.feature_frames(st, final)
        if total <= have:
            return None
        s0 = max(0, (have - 3) * self.hop)            # frames >= 2 into a segment do not see its start
        kept = np.concatenate(st.audio) if len(st.audio) > 1 else st.audio[0]
        audio = kept[s0 - st.audio_start:]
        keep_from = max(0, (total - 3) * self.hop)
        st.audio = [kept[keep_from - st.audio_start:]]
        st.audio_start = keep_from
        return audio, have - s0 // self.hop, total - have

    def release_features(self, states: list[StreamState], final: bool = False) -> None:
        """Compute the features the streams' audio now allows, for all of them in one preprocessor call
        (segments zero-padded to the longest; live frames never reach the padding, so each stream's frames
        equal those it gets alone). The frame batcher runs its front end this way, once per batch."""
        todo = [(st, seg) for st in states if (seg := self._take_segment(st, final)) is not None]
        if not todo:
            return
        L = max(len(seg[0]) for _, seg in todo)
        x = np.zeros((len(todo), L), np.float32)
        for i, (_, (audio, _, _)) in enumerate(todo):
            x[i, :len(audio)] = audio
        lengths = torch.tensor([len(seg[0]) for _, seg in todo], device=self.device)
        with torch.inference_mode():
            f, _ = self.model.preprocessor(input_signal=torch.from_numpy(x).to(self.device), length=lengths)
        for i, (st, (_, j0, k)) in enumerate(todo):
            new = f[i, :, j0:j0 + k]
            st.feats = new if st.feats is None else torch.cat([st.feats, new], dim=1)

    def next_chunk(self, st: StreamState, final: bool, context=None, advance: bool = True) -> Chunk | None:
        """The stream's next :class:`Chunk`, or None when its released features do not complete one yet.
        ``context`` picks the chunk size of another trained context; ``advance=False`` only looks."""
        cfg = self.cfg if context is None else self.cfgs[tuple(context)]
        first = st.buffer_idx == 0
        size = self._size(cfg.chunk_size, first)
        shift = self._size(cfg.shift_size, first)
        n = 0 if st.feats is None else st.feats.shape[1]
        if n - st.buffer_idx <= 0 or (not final and n < st.buffer_idx + size):
            return None
        chunk = st.feats[:, st.buffer_idx:st.buffer_idx + size]
        pcs = self._size(cfg.pre_encode_cache_size, first)
        drop = 0 if first else int(cfg.drop_extra_pre_encoded)
        if first:
            cache = torch.zeros((chunk.shape[0], pcs), dtype=chunk.dtype, device=chunk.device)
        elif st.buffer_idx >= pcs:
            cache = st.feats[:, st.buffer_idx - pcs:st.buffer_idx]
        else:
            # Fewer real frames than the pre-encode cache (only with a first chunk shorter than the cache,
            # i.e. lookahead 0). NeMo pads the cache with zero *features*, which is not what the offline
            # pass sees (the subsampling convolutions pad each layer's input, not the features), and the
            # stream diverges from the second chunk on. Instead, run the pre-encoder over the stream from
            # its start, exactly as offline, and drop the outputs already emitted.
            cache = st.feats[:, :st.buffer_idx]
            drop = self._pre_encoded_frames(st.buffer_idx)
        x = torch.cat([cache, chunk], dim=1)
        length = min(n - st.buffer_idx + cache.shape[1], x.shape[1])
        is_last = final and st.buffer_idx + shift >= n
        if advance:
            # audio the chunk's last feature frame needs (centred STFT): when it could run, live
            st.heard = min(st.n_samples, (min(n, st.buffer_idx + size) - 1) * self.hop + self.half_window)
            st.buffer_idx += shift
        return Chunk(x.unsqueeze(0), int(length), int(drop), bool(is_last))

    def _pre_encoded_frames(self, n_feature_frames: int) -> int:
        """Encoder frames the causal subsampling makes from the first ``n`` feature frames."""
        s0, s1 = (self.sampling_frames if isinstance(self.sampling_frames, (list, tuple))
                  else (self.sampling_frames, self.sampling_frames))
        return 0 if n_feature_frames < s0 else 1 + (n_feature_frames - s0) // s1

    def accept_audio(self, st: StreamState, samples: np.ndarray, sample_rate: int = MODEL_SAMPLE_RATE) -> list:
        """Add audio; run every chunk that is now complete. Returns the events of those steps."""
        if st.finished:
            raise RuntimeError(f"stream {st.stream_id} is finalised; start a new one")
        if sample_rate != MODEL_SAMPLE_RATE:   # resampling 30 ms blocks one by one would click at every edge
            raise ValueError(f"stream {st.stream_id}: audio must arrive at {MODEL_SAMPLE_RATE} Hz, got {sample_rate} "
                             f"(resample the stream first, e.g. with workbench.audio.resample)")
        x = load_audio(np.asarray(samples), sample_rate) if len(samples) else np.zeros(0, np.float32)
        if len(x):
            st.audio.append(x)
            st.n_samples += len(x)
        self.release_features([st])
        return self.run_chunks(st, final=False)

    def finalize(self, st: StreamState) -> list:
        """Flush the last (partial) chunks with all outputs kept; ends with a Final event."""
        self.release_features([st], final=True)
        events = self.run_chunks(st, final=True)
        st.finished = True
        events.append(self.result(st))
        return events

    def run_chunks(self, st: StreamState, final: bool) -> list:
        """Step every chunk the stream's released features complete (``final``: the last one too)."""
        events = []
        while True:
            ch = self.next_chunk(st, final)
            if ch is None:
                return events
            events += self.step_batch([st], [ch])
            if ch.is_last:
                st.done = True
                return events

    # -- one batched cache-aware step ---------------------------------------------------------------
    def encode(self, states: list[StreamState], chunks: list[Chunk], context=None):
        """The batched cache-aware encoder step, changing no stream: encoder output, lengths, new caches,
        CTC log-probs. A lookahead policy probes a chunk with it before deciding to wait for more audio."""
        if len({(c[2], c[3]) for c in chunks}) != 1:
            raise ValueError("a batch must not mix first/later chunks or last/non-last chunks")
        drop, is_last = chunks[0][2], chunks[0][3]
        T = max(c[0].shape[-1] for c in chunks)
        x = torch.cat([torch.nn.functional.pad(c[0], (0, T - c[0].shape[-1])) for c in chunks], dim=0)
        lengths = torch.tensor([c[1] for c in chunks], device=self.device)
        c_ch = torch.cat([s.cache[0] for s in states], dim=1)
        c_t = torch.cat([s.cache[1] for s in states], dim=1)
        c_len = torch.cat([s.cache[2] for s in states], dim=0)
        m = self.model
        ctx = list(self.att_context if context is None else context)
        with self.lock, torch.inference_mode():
            own = [int(v) for v in m.encoder.att_context_size]
            if own != ctx:
                m.encoder.set_default_att_context_size(ctx)
            try:
                enc, enc_len, n_ch, n_t, n_len = m.encoder.cache_aware_stream_step(
                    processed_signal=x, processed_signal_length=lengths, cache_last_channel=c_ch,
                    cache_last_time=c_t, cache_last_channel_len=c_len, keep_all_outputs=is_last,
                    drop_extra_pre_encoded=drop)
            finally:
                if own != ctx:         # the model's own context, as its owner left it
                    m.encoder.set_default_att_context_size(own)
            ctc_logp = m.ctc_decoder(encoder_output=enc) if hasattr(m, "ctc_decoder") else None
        return enc, enc_len, (n_ch, n_t, n_len), ctc_logp

    def step_batch(self, states: list[StreamState], chunks: list[Chunk], context=None, encoded=None) -> list:
        """One encoder step for several streams at once (their caches gathered into a batch and
        scattered back). All chunks must agree on ``drop_extra`` and ``is_last``. ``context`` overrides the
        recogniser's context for this step; ``encoded`` reuses an ``encode`` result of the same chunks."""
        enc, enc_len, (n_ch, n_t, n_len), ctc_logp = encoded or self.encode(states, chunks, context)
        with self.lock, torch.inference_mode():
            prev = [s.hyp for s in states]
            hyps = self.decoding.rnnt_decoder_predictions_tensor(
                encoder_output=enc, encoded_lengths=enc_len, return_hypotheses=True,
                partial_hypotheses=prev if any(h is not None for h in prev) else None)
        events = []
        for i, st in enumerate(states):
            st.cache = (n_ch[:, i:i + 1], n_t[:, i:i + 1], n_len[i:i + 1])
            st.hyp = hyps[i]
            k = int(enc_len[i])
            if self.nbest > 1:
                st.encoded.append(enc[i, :, :k].detach())
            st.encoder_frames += k
            st.step += 1
            tokens = [int(t) for t in (st.hyp.y_sequence.tolist() if torch.is_tensor(st.hyp.y_sequence) else st.hyp.y_sequence)]
            eou_p = ctc_logp[i, :k, self.eou_id].exp().cpu().numpy() if ctc_logp is not None and self.eou_id is not None else None
            audio_end = st.heard / MODEL_SAMPLE_RATE
            events.append(Partial(st.stream_id, self.text(tokens), tokens, audio_end, st.step, st.encoder_frames,
                                  encoder_output=enc[i, :, :k].T.cpu().numpy(), eou_prob=eou_p))
            if self.eou_id is not None and not st.eou_sent and self.eou_id in tokens:
                st.eou_sent = True
                events.append(EndOfUtterance(st.stream_id, st.encoder_frames * self.frame_s,
                                             float(eou_p.max()) if eou_p is not None and len(eou_p) else float("nan"),
                                             st.step))
        return events

    # -- text ---------------------------------------------------------------------------------------
    def text(self, tokens: list[int]) -> str:
        special = {self.eou_id, self.eob_id, None}
        ids = [t for t in tokens if t not in special and t < self.model.tokenizer.vocab_size]
        return strip_special(self.model.tokenizer.ids_to_text(ids))

    def result(self, st: StreamState) -> Final:
        """The stream's result so far, changing nothing: the greedy hypothesis (score, word times), or with
        ``nbest`` > 1 the beam's n-best, best first, each with its acoustic (RNNT log-likelihood) score; a
        beam hypothesis equal to the greedy one keeps its word times."""
        greedy = self.result_greedy(st)
        if self.nbest > 1 and st.encoded:
            return self._rerank(Final(st.stream_id, self.beam_nbest(st, greedy.nbest[0]), greedy.audio_end))
        return greedy

    def _rerank(self, final: Final) -> Final:
        if self.reranker is None:
            return final
        t0 = time.perf_counter()
        out = self.reranker(final)
        self.rerank_ms.append(1000 * (time.perf_counter() - t0))
        return out

    def result_greedy(self, st: StreamState) -> Final:
        """The greedy hypothesis alone (score, word times)."""
        tokens = [] if st.hyp is None else [int(t) for t in st.hyp.y_sequence]
        score = float(st.hyp.score) if st.hyp is not None else 0.0
        return Final(st.stream_id, [Hypothesis(self.text(tokens), score, tokens, self._word_times(st))],
                     st.n_samples / MODEL_SAMPLE_RATE)

    def beam_nbest(self, st: StreamState, greedy: Hypothesis | None = None) -> list[Hypothesis]:
        """NeMo's RNNT beam search over the stream's whole encoder output (streaming equals offline, so this
        is the offline beam over the same frames): distinct hypotheses, best score first."""
        return self.beam_nbest_batch([st], [greedy])[0]

    def beam_nbest_batch(self, states: list[StreamState], greedies: list[Hypothesis | None] | None = None
                         ) -> list[list[Hypothesis]]:
        """``beam_nbest`` of several streams in one batched beam search (their encoder outputs padded, the
        lengths passed): what a bench or a batch of finished streams pays once instead of per stream."""
        greedies = greedies or [None] * len(states)
        encs = [torch.cat(st.encoded, dim=1) for st in states]
        lengths = torch.tensor([e.shape[-1] for e in encs], device=encs[0].device)
        enc = torch.zeros((len(encs), encs[0].shape[0], int(lengths.max())), dtype=encs[0].dtype, device=encs[0].device)
        for i, e in enumerate(encs):
            enc[i, :, :e.shape[-1]] = e
        with self.lock, torch.inference_mode():
            batch = self.beam_decoding.rnnt_decoder_predictions_tensor(
                encoder_output=enc, encoded_lengths=lengths, return_hypotheses=True)
        return [self._distinct(hyps, g) for hyps, g in zip(batch, greedies)]

    def _distinct(self, hyps, greedy: Hypothesis | None) -> list[Hypothesis]:
        """Beam hypotheses best first, one per token sequence (end-of-utterance/block tokens ignored)."""
        special = (self.eou_id, self.eob_id)
        gkey = [t for t in greedy.tokens if t not in special] if greedy is not None else None
        out, seen = [], set()
        for h in sorted(hyps, key=lambda h: -float(h.score)):
            toks = [int(t) for t in (h.y_sequence.tolist() if torch.is_tensor(h.y_sequence) else h.y_sequence)]
            key = tuple(t for t in toks if t not in special)
            if key in seen:
                continue
            seen.add(key)
            words = greedy.words if gkey == list(key) else []
            out.append(Hypothesis(self.text(toks), float(h.score), toks, words))
        return out

    def results(self, states: list[StreamState]) -> list[Final]:
        """``result`` of several streams, their beam searches (``nbest`` > 1) batched into one."""
        finals = [self.result_greedy(st) for st in states]
        if self.nbest > 1:
            beam = [i for i, st in enumerate(states) if st.encoded]
            if beam:
                lists = self.beam_nbest_batch([states[i] for i in beam], [finals[i].nbest[0] for i in beam])
                for i, nb in zip(beam, lists):
                    finals[i] = self._rerank(Final(finals[i].stream_id, nb, finals[i].audio_end))
        return finals

    def _word_times(self, st: StreamState) -> list[WordTiming]:
        """Word start/end from the encoder frame at which each token was emitted (RNNT alignments)."""
        if st.hyp is None or not getattr(st.hyp, "alignments", None):
            return []
        pieces = []   # (frame, piece)
        for t, frame in enumerate(st.hyp.alignments):
            for _, tok in frame:
                tok = int(tok)
                if tok < self.model.tokenizer.vocab_size and tok not in (self.eou_id, self.eob_id):
                    pieces.append((t, self.model.tokenizer.ids_to_tokens([tok])[0]))
        words: list[list] = []
        for t, piece in pieces:
            if piece.startswith("▁") or not words:
                words.append([piece.lstrip("▁"), t, t])
            else:
                words[-1][0] += piece
                words[-1][2] = t
        return [WordTiming(w, round(a * self.frame_s, 3), round((b + 1) * self.frame_s, 3)) for w, a, b in words if w]


def transcribe_streaming(rec: StreamingRecognizer, audio: np.ndarray, frame_ms: int = 30, stream_id: str = "0"):
    """Replay ``audio`` in frames of ``frame_ms`` through ``rec``; returns all events (ending with Final)."""
    st = rec.new_stream(stream_id)
    step = int(MODEL_SAMPLE_RATE * frame_ms / 1000)
    events = []
    for a in range(0, len(audio), step):
        events += rec.accept_audio(st, audio[a:a + step])
    return events + rec.finalize(st)


def preloaded_streams(rec: StreamingRecognizer, audios: list[np.ndarray]) -> list[StreamState]:
    """One stream per whole recording, all its features released (offline replay of many streams)."""
    states = [rec.new_stream(str(i)) for i in range(len(audios))]
    for st, a in zip(states, audios):
        st.audio, st.audio_start, st.n_samples = [np.asarray(a, np.float32)], 0, len(a)
        rec.release_features([st], final=True)
    return states


def transcribe_batch(rec: StreamingRecognizer, audios: list[np.ndarray]) -> list[list]:
    """Several whole recordings stepped together: each round gathers every stream's next chunk into
    batched steps (grouped by chunk kind). Returns each stream's events, as ``transcribe_streaming`` would."""
    states = preloaded_streams(rec, audios)
    events: list[list] = [[] for _ in audios]
    active = list(range(len(states)))
    while active:
        groups: dict = {}
        for i in active:
            ch = rec.next_chunk(states[i], final=True)
            if ch is None:
                states[i].finished = True
            else:
                groups.setdefault((ch[2], ch[3]), []).append((i, ch))
        for members in groups.values():
            idx = [i for i, _ in members]
            out = rec.step_batch([states[i] for i in idx], [c for _, c in members])
            for ev in out:
                events[int(ev.stream_id)].append(ev)
            for i, c in members:
                if c.is_last:
                    states[i].finished = True
        active = [i for i in active if not states[i].finished]
    for i, f in enumerate(rec.results(states)):
        events[i].append(f)
    return events
