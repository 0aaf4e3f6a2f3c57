"""Log-probability of texts under a causal LM: the one scoring function every room uses.

A text is scored as the sequence ``<bos> t1 ... tn [<eos>]``: every token after the start symbol is
predicted from its prefix, so a text's score is comparable with another's (the sum), and the end symbol
makes a hypothesis that stops mid-sentence pay for it (``eos=True``, the default for reranking). A
``context`` (e.g. "A request to a voice assistant:") is conditioned on but not scored: it tells an instruction-
tuned model what kind of text follows. Texts are scored in padded batches (right padding, attention mask);
padding never changes a text's score.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .load import CausalLM


@dataclass
class HeadLM(CausalLM):
    """A causal LM read by a scalar head on the hidden state of a text's last token (its end symbol, which has
    seen the whole text): a sequence scorer, as a reward model is. Why beside the log-probability: a reranker's
    question is which hypothesis is right, not which text is likely, and a probability sum also charges a
    hypothesis for every word it keeps (the beam's errors here are mostly dropped words). The head skips the
    vocabulary projection, a fifth of SmolLM2's weights."""
    head: "torch.nn.Module | None" = None


def backbone(model):
    """The transformer under a causal LM's vocabulary projection (through a ``peft`` wrapper: the same
    modules, LoRA layers included)."""
    m = model.get_base_model() if hasattr(model, "get_base_model") else model
    return m.base_model


def head_scores(lm: HeadLM, ids: list[list[int]]) -> torch.Tensor:
    """The head's score of each sequence (from ``encode``) at its last token, one padded forward pass through
    the backbone alone; differentiable (MWER training), float32."""
    pad = lm.tokenizer.pad_token_id if lm.tokenizer.pad_token_id is not None else 0
    x, mask = pad_batch(ids, pad)
    h = backbone(lm.model)(input_ids=x.to(lm.device), attention_mask=mask.to(lm.device)).last_hidden_state
    last = h[torch.arange(len(ids), device=h.device), (mask.sum(1) - 1).to(h.device)]
    w = next(lm.head.parameters())
    return lm.head(last.to(w.dtype))[:, 0].float()


class LMInputError(ValueError):
    """A text the LM cannot score: not a string, or longer than the model's positions allow."""


@dataclass(frozen=True)
class TextScore:
    """Natural-log probabilities: ``total`` = sum of ``token_logprobs`` (one per scored token)."""
    text: str
    total: float
    token_logprobs: tuple[float, ...]
    tokens: tuple[str, ...]

    @property
    def n_tokens(self) -> int:
        return len(self.token_logprobs)

    @property
    def mean(self) -> float:
        return self.total / max(1, self.n_tokens)


def _start_id(tok) -> int:
    for v in (tok.bos_token_id, tok.eos_token_id, tok.pad_token_id):
        if v is not None:
            return int(v)
    raise LMInputError("the tokenizer has neither a start, end nor padding token to begin a text with")


def encode(lm: CausalLM, texts: list[str], eos: bool = True, context: str = "") -> tuple[list[list[int]], int]:
    """Token ids ``[start, c1..ck, t1..tn, (end)]`` per text and ``k + 1`` (where scoring begins); typed
    errors for what cannot be scored."""
    tok = lm.tokenizer
    start, end = _start_id(tok), tok.eos_token_id
    ctx = list(tok(context, add_special_tokens=False)["input_ids"]) if context else []
    sep = " " if context and not context[-1].isspace() else ""    # the text is the context's next word
    out = []
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise LMInputError(f"text {i} is {type(t).__name__}, not str")
        ids = [start] + ctx + list(tok((sep if t else "") + t, add_special_tokens=False)["input_ids"]) + ([int(end)] if eos and end is not None else [])
        if len(ids) > lm.max_tokens:
            raise LMInputError(f"text {i} has {len(ids)} tokens; the model allows {lm.max_tokens}")
        out.append(ids)
    return out, len(ctx) + 1


def pad_batch(batch: list[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids and their attention mask."""
    L = max(len(x) for x in batch)
    x = torch.full((len(batch), L), int(pad), dtype=torch.long)
    mask = torch.zeros((len(batch), L), dtype=torch.long)
    for i, seq in enumerate(batch):
        x[i, :len(seq)] = torch.tensor(seq)
        mask[i, :len(seq)] = 1
    return x, mask


def token_logprobs(model, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """log p(token j | tokens < j) for j >= 1, shape (batch, length - 1): differentiable (MWER training calls it
    with gradients on, scoring under ``inference_mode``)."""
    logits = model(input_ids=x, attention_mask=mask).logits.float()
    return torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, x[:, 1:, None])[..., 0]


def text_logprob_sums(lm: CausalLM, ids: list[list[int]], first: int) -> torch.Tensor:
    """Sum of the scored tokens' log-probabilities per sequence (from ``encode``), one forward pass."""
    pad = lm.tokenizer.pad_token_id if lm.tokenizer.pad_token_id is not None else 0
    x, mask = pad_batch(ids, pad)
    lp = token_logprobs(lm.model, x.to(lm.device), mask.to(lm.device))
    scored = mask[:, 1:].clone()
    scored[:, :first - 1] = 0                                  # the start symbol and context are not scored
    return (lp * scored.to(lp.device)).sum(-1)


def score_texts(lm: CausalLM, texts: list[str], eos: bool = True, batch_size: int = 32,
                context: str = "") -> list[TextScore]:
    """Log-probability of each text (sum and per token) given ``context``, ``batch_size`` texts per forward pass."""
    texts = list(texts)
    ids, first = encode(lm, texts, eos, context)
    scores: list[TextScore] = []
    pad = lm.tokenizer.pad_token_id if lm.tokenizer.pad_token_id is not None else 0
    for b in range(0, len(ids), batch_size):
        batch = ids[b:b + batch_size]
        x, mask = pad_batch(batch, pad)
        with torch.inference_mode():
            logp = token_logprobs(lm.model, x.to(lm.device), mask.to(lm.device)).cpu()
        for i, seq in enumerate(batch):
            lp = logp[i, first - 1:len(seq) - 1].tolist()      # logp[j] predicts token j + 1
            toks = tuple(lm.tokenizer.convert_ids_to_tokens(seq[first:]))
            scores.append(TextScore(texts[b + i], float(sum(lp)), tuple(lp), toks))
    return scores
