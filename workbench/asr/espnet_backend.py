"""The ESPnet backend: a contextual-block conformer (espnet2's ASR task) decoded chunk by chunk by
``Speech2TextStreaming``, behind the same stream interface as the NeMo recogniser: ``new_stream``,
``accept_audio`` -> ``Partial`` events, ``finalize`` -> ``Final`` with an n-best list.

One ``Speech2TextStreaming`` (one model in memory) serves any number of streams: its per-utterance state
(frontend buffer, encoder block states, online beam search) is swapped in and out per stream. Word times of
the final hypotheses come from a CTC forced alignment (torchaudio) over the stream's encoder output.
"""
from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..audio import MODEL_SAMPLE_RATE, load_audio
from ..events import Final, Hypothesis, Partial, WordTiming

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


def write_config(out_dir: str | os.PathLike, bpemodel: str | os.PathLike, encoder_conf: dict | None = None,
                 decoder_conf: dict | None = None, ctc_weight: float = 0.3, extra: list[str] = ()):
    """Parse an espnet2 ASR task configuration (the task's own parser), build the model from it and write
    ``config.yaml`` + ``tokens.txt`` into ``out_dir``. Returns (args, model)."""
    from espnet2.tasks.asr import ASRTask
    from espnet2.utils.yaml_no_alias_safe_dump import yaml_no_alias_safe_dump
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "tokens.txt").write_text("\n".join(token_list(bpemodel)) + "\n")

    def kv(flag, conf):
        return [a for k, v in conf.items() for a in (flag, f"{k}={v}")]
    argv = ["--token_list", str(out / "tokens.txt"), "--token_type", "bpe", "--bpemodel", str(bpemodel),
            "--frontend", "default", *kv("--frontend_conf", FRONTEND_CONF), "--normalize", "null",
            "--encoder", "contextual_block_conformer", *kv("--encoder_conf", {**ENCODER_CONF, **(encoder_conf or {})}),
            "--decoder", "transformer", *kv("--decoder_conf", {**DECODER_CONF, **(decoder_conf or {})}),
            "--model_conf", f"ctc_weight={ctc_weight}", *extra]
    args = ASRTask.get_parser().parse_args(argv)
    model = ASRTask.build_model(args)
    with open(out / "config.yaml", "w") as f:
        yaml_no_alias_safe_dump(vars(args), f, indent=4, sort_keys=False)
    return args, model


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


class EspnetStreamingRecognizer:
    """Contextual-block streaming ASR from an espnet2 ``config.yaml`` + ``model.pth``."""

    def __init__(self, asr_train_config: str | os.PathLike, asr_model_file: str | os.PathLike,
                 beam_size: int = 4, nbest: int = 3, ctc_weight: float = 0.3, device: str | None = None):
        from espnet2.bin.asr_inference_streaming import Speech2TextStreaming
        for p in (asr_train_config, asr_model_file):
            if not Path(p).is_file():
                from .streaming import ModelNotAvailableError
                raise ModelNotAvailableError(f"no ESPnet checkpoint file at {p}")
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.s2t = Speech2TextStreaming(asr_train_config=str(asr_train_config), asr_model_file=str(asr_model_file),
                                        device=device, beam_size=beam_size, nbest=nbest, ctc_weight=ctc_weight)
        self.model = self.s2t.asr_model
        self.frame_s = FRONTEND_CONF["hop_length"] / MODEL_SAMPLE_RATE * 4     # conv2d subsampling: 4x

    def new_stream(self, stream_id: str = "0") -> EspnetStream:
        beam = copy.copy(self.s2t.beam_search)      # shares the scorers (the model), not the search state
        beam.reset()
        return EspnetStream(stream_id, beam=beam)

    def _ids_text(self, ids: list[int]) -> str:
        ids = [i for i in ids if i not in (0, self.model.sos, self.model.eos)]
        return self.s2t.tokenizer.tokens2text(self.s2t.converter.ids2tokens(ids)) if ids else ""

    def _step(self, st: EspnetStream, x: np.ndarray, final: bool):
        s2t = self.s2t
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
        out = []
        for h in nbest[: self.s2t.nbest]:
            ids = [int(t) for t in h.yseq[1:-1].tolist() if int(t) != 0]
            out.append(Hypothesis(self._ids_text(ids), float(h.score), ids, self._word_times(st, ids)))
        return [Final(st.stream_id, out, st.n_samples / MODEL_SAMPLE_RATE)]

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
