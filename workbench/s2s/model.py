"""The speech-to-speech LM: a Hugging Face Llama body over parallel text and codec streams (layout.py).

Why a transformers ``LlamaModel`` fed ``inputs_embeds``: the body is the text LM's own (stage 3 initialises it from
the domain LM or SmolLM2-135M, same code), and only the input tables and output heads are ours: one text table and
head (the text LM's, grown by the control tokens) and one table and head per codebook. A step's input is the sum of
its text embedding and its codebooks' embeddings; each head predicts its stream's next token.
"""
from __future__ import annotations

import torch
from torch import nn

from .layout import IGNORE, Layout


class SpeechTextLM(nn.Module):
    def __init__(self, layout: Layout, llama_config):
        super().__init__()
        from transformers import LlamaModel
        self.layout = layout
        self.body = LlamaModel(llama_config)
        h = llama_config.hidden_size
        self.body.embed_tokens = None              # inputs come as embeddings (ours)
        self.text_emb = nn.Embedding(layout.text_vocab, h)
        self.audio_emb = nn.Embedding(layout.n_q * layout.audio_vocab, h)
        self.text_head = nn.Linear(h, layout.text_vocab, bias=False)
        self.audio_head = nn.Linear(h, layout.n_q * layout.audio_vocab, bias=False)
        for table in (self.text_emb, self.audio_emb):        # the LM's own init: unit-variance rows would
            nn.init.normal_(table.weight, std=llama_config.initializer_range)   # start with huge logits
        self.text_head.weight = self.text_emb.weight          # tied, as the text LM ties its own
        self.audio_head.weight = self.audio_emb.weight
        self.register_buffer("offsets", torch.arange(layout.n_q) * layout.audio_vocab, persistent=False)

    def embed(self, text: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """(B, L) text ids and (B, L, n_q) codes -> (B, L, hidden)."""
        return self.text_emb(text) + self.audio_emb(audio + self.offsets).sum(-2)

    def forward(self, text, audio, attention_mask=None, past_key_values=None, use_cache: bool = False):
        out = self.body(inputs_embeds=self.embed(text, audio), attention_mask=attention_mask,
                        past_key_values=past_key_values, use_cache=use_cache)
        h = out.last_hidden_state
        b, n, _ = h.shape
        audio_logits = self.audio_head(h).view(b, n, self.layout.n_q, self.layout.audio_vocab)
        return self.text_head(h), audio_logits, out.past_key_values

    def loss(self, batch: dict) -> tuple[torch.Tensor, dict]:
        """Mean cross-entropy of the learnt text steps plus that of the learnt codes (each stream's mean, so a
        turn's many codes do not drown its few words)."""
        tl, al, _ = self(batch["text"], batch["audio"], batch.get("attention_mask"))
        f = nn.functional.cross_entropy
        parts = {}
        if (batch["text_labels"] != IGNORE).any():
            parts["text"] = f(tl.flatten(0, 1), batch["text_labels"].flatten(), ignore_index=IGNORE)
        if (batch["audio_labels"] != IGNORE).any():
            parts["audio"] = f(al.flatten(0, 2), batch["audio_labels"].flatten(), ignore_index=IGNORE)
        if not parts:
            raise ValueError("nothing to learn in this batch: every label is IGNORE")
        total = sum(parts.values())
        return total, {k: float(v.detach()) for k, v in parts.items()}


class GenerationError(RuntimeError):
    """A generation that could not finish as asked (an empty prefix, a limit below one step)."""


@torch.no_grad()
def generate(model: SpeechTextLM, text: torch.Tensor, audio: torch.Tensor, max_text: int = 48,
             max_frames: int = 250, temperature: float = 0.0, top_k: int = 0, generator=None) -> dict:
    """Continue one prefix (``text`` (L,), ``audio`` (L, n_q), ending at ``<answer>``) with the answer: text
    tokens until ``<speak>`` (at most ``max_text``), then speech until codebook 0 writes its pad (at most
    ``max_frames`` frames: never endless). Greedy at temperature 0, else sampled from the top ``top_k``.
    Returns the answer's text ids, its codes (n_q, frames), whether a limit cut it (``truncated``), and
    ``first_frame_s``: seconds from the call until the first frame had every codebook (the first audio a streaming
    decoder can play; None when the answer has no frame)."""
    import time
    t0 = time.perf_counter()
    lay = model.layout
    if text.ndim != 1 or len(text) == 0 or audio.shape != (len(text), lay.n_q):
        raise GenerationError(f"prefix must be text (L,) and audio (L, {lay.n_q}) with L > 0")
    if max_text < 1 or max_frames < 1:
        raise GenerationError("max_text and max_frames must be at least 1")
    model.eval()
    speak, pad = lay.special("<speak>"), lay.audio_pad

    def pick(logits):
        if temperature <= 0:
            return logits.argmax(-1)
        logits = logits / temperature
        if top_k:
            kth = logits.topk(min(top_k, logits.size(-1)), -1).values[..., -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        p = logits.softmax(-1)
        return torch.multinomial(p.reshape(-1, p.size(-1)), 1, generator=generator).view(p.shape[:-1])

    tl, al, past = model(text[None], audio[None], use_cache=True)
    words, truncated = [], False
    nxt = int(pick(tl[0, -1]))
    # the inner monologue: text steps, audio resting
    while nxt != speak:
        if len(words) == max_text:
            truncated = True
            nxt = speak
            break
        words.append(nxt)
        tl, al, past = model(torch.tensor([[nxt]]), torch.full((1, 1, lay.n_q), pad), past_key_values=past,
                             use_cache=True)
        nxt = int(pick(tl[0, -1]))
    tl, al, past = model(torch.tensor([[speak]]), torch.full((1, 1, lay.n_q), pad), past_key_values=past,
                         use_cache=True)
    # speech: codebook g of frame t is written at step t + g; the frame count is fixed when codebook 0 rests
    steps, frames, first = [], None, None
    j = 0
    while True:
        codes = pick(al[0, -1])                                    # (n_q,)
        for g in range(lay.n_q):
            t = j - g                                              # the frame codebook g writes now
            if t < 0 or (frames is not None and t >= frames):
                codes[g] = pad
            elif g > 0 and codes[g] == pad:                        # an acoustic codebook may not end a frame
                codes[g] = al[0, -1, g, :pad].argmax()
        if frames is None and (codes[0] == pad or j == max_frames):
            truncated |= bool(j == max_frames and codes[0] != pad)
            frames = j
            codes[0] = pad
        steps.append(codes.clone())
        if j == lay.n_q - 1 and (frames is None or frames > 0):
            first = time.perf_counter() - t0                       # frame 0's last codebook is written
        j += 1
        if frames is not None and j >= frames + lay.n_q - 1:
            break
        tl, al, past = model(torch.tensor([[lay.text_pad]]), codes.view(1, 1, -1), past_key_values=past,
                             use_cache=True)
    c = lay.codes_from_steps(torch.stack(steps).numpy()) if frames else torch.zeros(lay.n_q, 0).long().numpy()
    return {"text": words, "codes": c[:, :frames] if frames else c, "truncated": truncated, "first_frame_s": first}
