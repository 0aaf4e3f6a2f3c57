"""Word times for synthesisers that do not report them: CTC forced alignment.

espeak-ng reports where each word starts; flite, festival, SVOX Pico and piper give audio only. Their word
times come from aligning the known text to the audio with ``torchaudio.functional.forced_align`` over the
CTC head of a NeMo model (the shipped default, whose BPE pieces mark word starts with "▁"). The model's
encoder steps every 80 ms, so a boundary is known to one encoder frame; the true end of speech never
depends on this (each stretch between pauses is synthesised alone and trimmed at its edges).
``python -m workbench align-check`` measures the error against espeak-ng's own word times.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from ..audio import MODEL_SAMPLE_RATE

DEFAULT_ALIGNER = Path(__file__).resolve().parents[2] / "data" / "models" / "asr_small" / "model.nemo"


class CtcAligner:
    """Forced alignment of words to 16 kHz audio with a NeMo CTC (or hybrid RNNT+CTC) model."""

    def __init__(self, model_path: str | os.PathLike = DEFAULT_ALIGNER):
        import torch
        from nemo.collections.asr.models import ASRModel
        from ..logs import quiet_if_interactive
        # NeMo's own restore, not the recogniser's loader: the corpus depends on a checkpoint, never on the
        # code of the model being trained (``import workbench`` lets NeMo build our preprocessor and encoder)
        if not Path(model_path).is_file():
            raise FileNotFoundError(f"the aligner's checkpoint is missing: {model_path} (make models, or pass a .nemo)")
        quiet_if_interactive()
        self.model = ASRModel.restore_from(str(model_path), map_location="cpu").eval()
        self.ctc = getattr(self.model, "ctc_decoder", None) or getattr(self.model, "decoder", None)
        self.blank = self.model.tokenizer.vocab_size   # NeMo puts CTC blank after the vocabulary
        self.torch = torch
        sub = self.model.cfg.encoder.get("subsampling_factor", 8)
        self.frame_s = sub * self.model.cfg.preprocessor.get("window_stride", 0.01)

    def _targets(self, words: list[str]) -> tuple[list[int], list[int]]:
        ids, word_of = [], []
        for k, w in enumerate(words):
            clean = re.sub(r"[^a-z' ]", "", w.lower()) or w
            toks = self.model.tokenizer.text_to_ids(clean)
            ids += toks
            word_of += [k] * len(toks)
        return ids, word_of

    def word_times(self, audio: np.ndarray, words: list[str], sr: int = MODEL_SAMPLE_RATE) -> list[tuple[float, float]]:
        """(start, end) seconds of each word; words are contiguous: one ends where the next starts, the
        first starts at 0 and the last ends at the audio's end (the caller trimmed the edges)."""
        import torchaudio.functional as AF
        torch = self.torch
        if len(words) == 1:
            return [(0.0, len(audio) / sr)]
        if sr != MODEL_SAMPLE_RATE:
            from ..audio import resample
            audio = resample(audio, sr, MODEL_SAMPLE_RATE)
        ids, word_of = self._targets(words)
        with torch.inference_mode():
            sig = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))[None]
            feats, flen = self.model.preprocessor(input_signal=sig, length=torch.tensor([sig.shape[1]]))
            enc, elen = self.model.encoder(audio_signal=feats, length=flen)
            logp = self.ctc(encoder_output=enc).float()
        T = int(elen[0])
        dur = len(audio) / MODEL_SAMPLE_RATE
        if T < len(ids) + sum(a == b for a, b in zip(ids, ids[1:])):
            # speech too fast for the aligner's frames (CTC needs a blank between repeated tokens): the words
            # share the audio by their length in letters, the best guess left
            edges = np.concatenate([[0], np.cumsum([len(w) + 1 for w in words])]) / (sum(len(w) + 1 for w in words))
            return [(round(float(a * dur), 4), round(float(b * dur), 4)) for a, b in zip(edges[:-1], edges[1:])]
        labels, _ = AF.forced_align(logp[:, :T], torch.tensor([ids], dtype=torch.int32), blank=self.blank)
        # merge_tokens' default blank is id 0, not NeMo's (the last id): blank runs count as spans and shift each
        # word's first span earlier. Measured against espeak-ng's own word starts (32 words) that lands closer
        # (median 0.17 s) than the spans of the tokens alone (0.53 s: this streaming model's CTC spikes lag), so it
        # stays until a better aligner replaces this one (issue 33: Whisper's word times).
        spans = AF.merge_tokens(labels[0], torch.zeros(T))
        first = {}
        for span, k in zip(spans, word_of):
            first.setdefault(k, span.start)
        # a word none of whose pieces got a span (an unknown piece, id 0, merges away as merge_tokens' blank: open
        # text has letters the templates' tokenizer lacks) starts where the word before it did
        starts = [0.0] + [min(first[k] * self.frame_s, dur) if k in first else 0.0 for k in range(1, len(words))]
        for k in range(1, len(starts)):      # keep every word non-empty and in order
            starts[k] = max(starts[k], starts[k - 1] + 1e-3)
        ends = starts[1:] + [dur]
        return [(round(a, 4), round(max(a, b), 4)) for a, b in zip(starts, ends)]


_ALIGNER: CtcAligner | None = None


def aligner() -> CtcAligner:
    """The process's aligner (loaded once: corpus workers share it through fork)."""
    global _ALIGNER
    if _ALIGNER is None:
        _ALIGNER = CtcAligner()
    return _ALIGNER
