"""Dynamic lookahead: wait for future audio only when it matters.

A multi-lookahead model (one encoder trained with several attention contexts, e.g. [70,0] .. [70,13]) can
change its context from one chunk to the next: with ``chunked_limited`` attention and 70 frames of left
context (a multiple of every chunk size) each step sees exactly what training showed it. The policy here
is a cascade, in the spirit of "Lookahead When It Matters" (ANCAT, ICML 2023): at each decision point the
cheapest context's chunk is *probed* (encoder + CTC head, no state change); if the CTC posteriors over
that chunk are confident it is committed at once, otherwise the stream waits for the next context's
larger chunk, and so on up the ladder. Uncertainty is read from the signal itself, no extra model.

Latency is algorithmic: a frame waits until the last frame of its chunk has arrived, so a committed chunk
of n encoder frames (80 ms each) costs its frames (n, n-1, .., 1) frames of waiting: "future audio waited
for, plus the frame itself". It is measured on the chunks a stream really committed (``mean_latency_ms``
over its decisions), first and last chunks included; a fixed [70,R] is run the same way, as a one-rung
ladder, so its figure is measured too (with every chunk full it would be (R+2)/2 frames).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from .streaming import StreamingRecognizer, StreamState, preloaded_streams


def uncertainty(logp: torch.Tensor, score: str = "maxprob") -> float:
    """How unsure the CTC head is over a chunk: the worst frame's 1 - max posterior ("maxprob") or its
    entropy in nats ("entropy"). 0 for an empty chunk."""
    if logp.numel() == 0:
        return 0.0
    if score == "maxprob":
        return float(1.0 - logp.exp().max(dim=-1).values.min())
    if score == "entropy":
        return float(-(logp.exp() * logp).sum(dim=-1).max())
    raise ValueError(f"unknown uncertainty score {score!r}: use 'maxprob' or 'entropy'")


@dataclass
class Decision:
    """One committed chunk: where it starts (encoder frame), how many frames, the context used, and the
    uncertainty of every probe that led there."""
    start: int
    frames: int
    context: tuple
    probes: list = field(default_factory=list)      # [(context, uncertainty), ...]

    @property
    def wait_frames(self) -> int:
        """Sum over the chunk's frames of the frames each waited (itself included)."""
        return self.frames * (self.frames + 1) // 2


@dataclass
class CascadePolicy:
    """Commit the first context of ``ladder`` whose probe is at most ``threshold`` unsure; the last
    context of the ladder is never probed, it is where waiting ends. ``threshold=1`` never waits
    (the first context alone), ``threshold=0`` always waits for the last."""
    ladder: tuple = ((70, 0), (70, 13))
    threshold: float = 0.5
    score: str = "maxprob"

    def __post_init__(self):
        self.ladder = tuple(tuple(int(v) for v in c) for c in self.ladder)
        if not self.ladder:
            raise ValueError("a ladder needs at least one context")
        if any(b[1] <= a[1] for a, b in zip(self.ladder, self.ladder[1:])):
            raise ValueError(f"ladder must grow in lookahead: {self.ladder}")

    @property
    def name(self) -> str:
        """'<family> <ladder lookaheads> @<threshold>'; plots draw one curve per name before the '@'."""
        family = "cascade" if type(self) is CascadePolicy else type(self).__name__
        return f"{family} {'>'.join(str(c[1]) for c in self.ladder)} @{self.threshold:g}"

    def commit(self, context: tuple, logp: torch.Tensor) -> tuple[bool, float]:
        """Decide on a probe of ``context``: (commit now?, the score it was decided on). ``logp`` holds the
        CTC log-probs (frames, vocab) of the chunk. Override this to write another policy."""
        u = uncertainty(logp, self.score)
        return u <= self.threshold, u


class DynamicLookaheadRecognizer(StreamingRecognizer):
    """A StreamingRecognizer whose context is chosen per chunk by a policy. Streams carry their
    decisions (``st.decisions``) for plots and latency accounting."""

    def __init__(self, model, policy: CascadePolicy | None = None):
        policy = policy or CascadePolicy()
        super().__init__(model, list(policy.ladder[0]))
        missing = [c for c in policy.ladder if c not in self.contexts]
        if missing:
            raise ValueError(f"ladder contexts {missing} are not ones the model was trained with: {self.contexts}")
        self.policy = policy

    def run_chunks(self, st: StreamState, final: bool) -> list:
        events = []
        while True:
            out = self.advance([st], final)
            if not out:
                return events
            events += out
            if st.done:
                return events

    def advance(self, states: list[StreamState], final: bool) -> list:
        """One decision round for several streams: probe the rung each is waiting on (batched per context),
        commit the confident ones, move the others up. Returns the events of the committed chunks."""
        ladder, pol = self.policy.ladder, self.policy
        events = []
        for _ in range(len(ladder)):
            groups: dict = {}
            for st in states:
                if st.done:
                    continue
                ctx = ladder[st.level]
                ch = self.next_chunk(st, final, ctx, advance=False)
                if ch is not None:
                    groups.setdefault((ctx, ch.drop_extra, ch.is_last), []).append((st, ch))
            if not groups:
                break
            for (ctx, _, _), members in groups.items():
                sts, chs = [m[0] for m in members], [m[1] for m in members]
                enc = self.encode(sts, chs, ctx)
                commit, wait = [], []
                for i, st in enumerate(sts):
                    ok = st.level == len(ladder) - 1          # the last rung is where waiting ends
                    if not ok:
                        ok, u = pol.commit(ctx, enc[3][i, :int(enc[1][i])])
                        st.probes.append((ctx, u))
                    (commit if ok else wait).append(i)
                for st in (sts[i] for i in wait):
                    st.level += 1
                if commit:
                    sub = _select(enc, commit)
                    csts = [sts[i] for i in commit]
                    for st, i in zip(csts, commit):
                        self.next_chunk(st, final, ctx, advance=True)
                        st.decisions.append(Decision(st.encoder_frames, int(enc[1][i]), ctx, st.probes))
                        st.probes, st.level = [], 0
                        st.done = chs[i].is_last
                    events += self.step_batch(csts, [chs[i] for i in commit], ctx, encoded=sub)
        return events

    def finalize(self, st: StreamState) -> list:
        self.release_features([st], final=True)
        events = []
        while not st.done:
            out = self.advance([st], final=True)
            if not out and self.next_chunk(st, True, self.policy.ladder[st.level], advance=False) is None:
                break
            events += out
        st.finished = True
        events.append(self.result(st))
        return events


def _select(enc, idx: list[int]):
    """The rows ``idx`` of an ``encode`` result (caches have the batch in dim 1, lengths in dim 0)."""
    e, el, (c_ch, c_t, c_len), logp = enc
    ix = torch.tensor(idx, device=e.device)
    return (e[ix], el[ix], (c_ch[:, ix], c_t[:, ix], c_len[ix]), None if logp is None else logp[ix])


def mean_latency_ms(decisions: list[Decision], frame_s: float) -> float:
    frames = sum(d.frames for d in decisions)
    return 1000 * frame_s * sum(d.wait_frames for d in decisions) / max(1, frames)


def transcribe_dynamic(rec: DynamicLookaheadRecognizer, audios: list[np.ndarray]):
    """Whole recordings stepped together under the policy (each round batches every stream's probe).
    Returns (texts, decisions per stream)."""
    states = preloaded_streams(rec, audios)
    active = list(states)
    while active:
        rec.advance(active, final=True)
        active = [st for st in active if not st.done
                  and rec.next_chunk(st, True, rec.policy.ladder[st.level], advance=False) is not None]
    finals = [rec.result(st) for st in states]
    return [f.nbest[0].text for f in finals], [st.decisions for st in states]
