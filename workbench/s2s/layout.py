"""One sequence for text and speech: how a turn becomes the steps the speech-to-speech LM reads and writes.

Why this shape: the codec (``workbench.codec``) writes 8 codebooks at 25 Hz. Flattened, a 3-second answer would be
600 tokens, too long for a small LM on a CPU; so every step carries one text token *and* one code per codebook, each
stream with its own embedding table and output head, summed at the input (MusicGen's and Moshi's parallel streams).
Codebook ``g`` is delayed by ``g`` steps (MusicGen's delay pattern): when the LM writes codebook ``g`` of a frame,
it has already written codebooks ``< g`` of it, which is what lets the acoustic codebooks follow the semantic one
without a second model. A turn is a list of segments, each either text (the audio streams rest) or speech (the text
stream rests): a task token, the request, and the answer as text first and then speech (the inner monologue as
SpeechGPT's chain of modality writes it, sequential rather than Moshi's time-aligned streams, which needs word
timings our codes do not have). Which steps carry a loss is the task's choice (``Segment.learn``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# control tokens, appended to the text LM's vocabulary (stage 3 gives them embeddings)
SPECIALS = ("<text-pad>", "<asr>", "<tts>", "<s2s>", "<translate>", "<continue>", "<answer>", "<speak>", "<end>")
IGNORE = -100                      # label of a step that carries no loss (torch's cross-entropy default)


class LayoutError(ValueError):
    """Codes or tokens that do not fit the layout (wrong shape, out of range)."""


@dataclass(frozen=True)
class Segment:
    """A piece of a turn: ``text`` token ids (the text LM's, or a SPECIAL's id) or ``codes`` (n_q, frames)."""
    text: tuple[int, ...] | None = None
    codes: np.ndarray | None = None
    learn: bool = False            # does the model learn to write this segment


@dataclass(frozen=True)
class Layout:
    """The id spaces: text ids ``[0, n_text)`` then SPECIALS; per codebook, codes ``[0, bins)`` then its pad."""
    n_text: int
    n_q: int
    bins: int

    @property
    def text_vocab(self) -> int:
        return self.n_text + len(SPECIALS)

    @property
    def audio_vocab(self) -> int:          # per codebook
        return self.bins + 1

    @property
    def audio_pad(self) -> int:
        return self.bins

    def special(self, name: str) -> int:
        if name not in SPECIALS:
            raise LayoutError(f"unknown control token {name!r}; known: {SPECIALS}")
        return self.n_text + SPECIALS.index(name)

    @property
    def text_pad(self) -> int:
        return self.special("<text-pad>")

    # -- one turn ---------------------------------------------------------------------------------------------
    def speech_steps(self, codes: np.ndarray) -> np.ndarray:
        """(n_q, frames) codes -> (frames + n_q - 1, n_q) steps, codebook g delayed by g, the rest padded."""
        c = np.asarray(codes)
        if c.ndim != 2 or c.shape[0] != self.n_q or c.shape[1] == 0:
            raise LayoutError(f"codes must be ({self.n_q}, frames > 0), got shape {c.shape}")
        if not np.issubdtype(c.dtype, np.integer) or c.min() < 0 or c.max() >= self.bins:
            raise LayoutError(f"codes must be integers in [0, {self.bins})")
        t = c.shape[1]
        out = np.full((t + self.n_q - 1, self.n_q), self.audio_pad, np.int64)
        for g in range(self.n_q):
            out[g: g + t, g] = c[g]
        return out

    def codes_from_steps(self, steps: np.ndarray) -> np.ndarray:
        """The inverse of ``speech_steps``: (frames + n_q - 1, n_q) -> (n_q, frames). A frame some codebook left
        as pad (a generation cut short) ends the codes there."""
        s = np.asarray(steps)
        if s.ndim != 2 or s.shape[1] != self.n_q:
            raise LayoutError(f"steps must be (length, {self.n_q}), got shape {s.shape}")
        t = s.shape[0] - self.n_q + 1
        if t <= 0:
            return np.zeros((self.n_q, 0), np.int64)
        c = np.stack([s[g: g + t, g] for g in range(self.n_q)])
        bad = (c >= self.bins).any(0)
        if bad.any():
            c = c[:, : int(np.argmax(bad))]
        return c.astype(np.int64)

    def build(self, segments: list[Segment]) -> dict:
        """Segments -> step arrays: ``text`` (L,), ``audio`` (L, n_q), and the labels each step is trained to
        predict at the step before it (``text_labels``, ``audio_labels``; IGNORE where the segment is not learnt
        or the stream rests)."""
        text, audio, tl, al = [], [], [], []
        for seg in segments:
            if (seg.text is None) == (seg.codes is None):
                raise LayoutError("a segment is either text or codes")
            if seg.text is not None:
                ids = np.asarray(seg.text, np.int64)
                if len(ids) == 0 or ids.min() < 0 or ids.max() >= self.text_vocab:
                    raise LayoutError(f"text ids must be non-empty and in [0, {self.text_vocab})")
                a = np.full((len(ids), self.n_q), self.audio_pad, np.int64)
                text.append(ids)
                audio.append(a)
                tl.append(ids if seg.learn else np.full(len(ids), IGNORE))
                al.append(np.full(a.shape, IGNORE))
            else:
                a = self.speech_steps(seg.codes)
                t = np.full(len(a), self.text_pad, np.int64)
                text.append(t)
                audio.append(a)
                tl.append(t if seg.learn else np.full(len(t), IGNORE))
                al.append(a if seg.learn else np.full(a.shape, IGNORE))
        text, audio = np.concatenate(text), np.concatenate(audio)
        tl, al = np.concatenate(tl), np.concatenate(al)
        # step i is trained to write step i + 1
        return {"text": text, "audio": audio,
                "text_labels": np.concatenate([tl[1:], [IGNORE]]).astype(np.int64),
                "audio_labels": np.concatenate([al[1:], np.full((1, self.n_q), IGNORE)]).astype(np.int64)}


def collate(rows: list[dict], layout: Layout) -> dict:
    """Right-padded batch of ``Layout.build`` outputs as torch tensors, with the attention mask."""
    import torch
    n = max(len(r["text"]) for r in rows)
    b = len(rows)
    out = {"text": torch.full((b, n), layout.text_pad, dtype=torch.long),
           "audio": torch.full((b, n, layout.n_q), layout.audio_pad, dtype=torch.long),
           "text_labels": torch.full((b, n), IGNORE, dtype=torch.long),
           "audio_labels": torch.full((b, n, layout.n_q), IGNORE, dtype=torch.long),
           "attention_mask": torch.zeros((b, n), dtype=torch.long)}
    for i, r in enumerate(rows):
        k = len(r["text"])
        for key in ("text", "audio", "text_labels", "audio_labels"):
            out[key][i, :k] = torch.from_numpy(np.asarray(r[key]))
        out["attention_mask"][i, :k] = 1
    return out
