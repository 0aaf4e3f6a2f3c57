"""The parser from text to graph, trained here: one pass of the domain LM with three heads.

Why this shape: a request's graph here is its frames (which intents, which roles, which constants: the
"signature", one of a closed set read from the templates' annotation) plus the words that fill each role (a span
of the text). So the parser is a joint classifier and tagger, as intent + slot models are, on the domain LM
(``data/models/lm_domain``, a causal Llama that already knows the domain's text) fine-tuned: the hidden state of
the end symbol (which has seen the whole text) chooses the signature and says whether the request was cut off;
the hidden state of each word's last token tags it (BIO over the slot types). The graph is then built by the same
code as the gold one (``graph.frame_graph``), so a role whose filler was not said becomes ``(u / unknown)``: the
partial, underspecified graph of Addlesee & Damonte. One forward pass, no decoding: a few milliseconds on a CPU
core, where a model emitting the linearised graph token by token pays per token.

Trained on texts drawn from the audio templates (never a held-out one, never a dev or test sentence), half of
them cut after a random word as the corpus cuts them; the cut-off threshold is chosen on the corpus's dev split.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..data import templates as T
from ..files import replace_dir
from .graph import _CLOSED, _FILLER, UNKNOWN, align, encode, frame_graph
from .schema import SLOT_ROLES, FrameUse, RoleUse, frame_uses, slots_of
from ..scale import finish_ranks, shard

MODELS = Path(__file__).resolve().parents[2] / "data" / "models"
DEFAULT = MODELS / "repair_parser"
SLOTS = sorted(SLOT_ROLES)
TAGS = ["O"] + [f"{p}-{s}" for s in SLOTS for p in ("B", "I")]
UNKNOWN_SIGNATURE = UNKNOWN


class ParseError(ValueError):
    """Text the parser cannot read: not a string, empty, or longer than the model's positions."""


# ---------------------------------------------------------------- signatures: a template's frames, slot-free

def signature(template: str) -> str:
    """A template's frames with every slot named by its kind and occurrence, so the same frames of another
    template with the same slots read the same: "call {name} i mean {name}" -> "call(name@2)"."""
    slots = slots_of(template)
    parts = []
    for f in frame_uses(template):
        items = []
        for r in f.roles:
            if r.constant is not None:
                items.append(f"{r.role}={r.constant}")
            else:
                name = slots[r.slot_index]
                items.append(f"{name}@{slots[:r.slot_index + 1].count(name)}")
        parts.append(f"{f.intent}({', '.join(items)})")
    return " ".join(parts)


_SIG = re.compile(r"([a-z][a-z-]*)\(([^)]*)\)")


def graph_from(sig: str, spans: list[tuple], n_words: int, cut: bool = False) -> str:
    """The graph of signature ``sig`` with role fillers from ``spans`` [(slot, words, first, end, partial)] of a
    text of ``n_words`` words. A role whose slot occurrence has no span, or whose span is ``partial`` (tagged as
    cut short), is ``unknown``; when the request was ``cut``, so is a closed-class filler that ends the text without
    being a whole value ("the living" of "living room"). An unknown signature is a graph with an explicit unknown
    intent."""
    if sig == UNKNOWN_SIGNATURE:
        return "(f1 / unknown)"
    values, frames = [], []
    late = n_words + 1                      # an end past the words said: frame_graph makes the filler unknown
    for intent, args in _SIG.findall(sig):
        roles = []
        for it in (a.strip() for a in args.split(",") if a.strip()):
            if it.startswith(":"):
                role, _, value = it.partition("=")
                roles.append(RoleUse(role, "constant", None, value))
                continue
            name, _, k = it.partition("@")
            mine = [s for s in spans if s[0] == name]
            k = int(k or 1)
            if k <= len(mine):
                _, words, a, b, partial = mine[k - 1]
                if partial or (cut and b >= n_words and name in _CLOSED and words not in _CLOSED[name]):
                    b = late
                values.append((words, a, b))
            else:
                values.append(("", late, late))
            roles.append(RoleUse(*SLOT_ROLES[name], len(values) - 1, None))
        frames.append(FrameUse(intent, tuple(roles)))
    return encode(frame_graph(tuple(frames), values, said=n_words))


# ---------------------------------------------------------------- training examples with labels by construction

def word_tags(template: str, full_text: str, said: int | None = None) -> tuple[list[str], bool]:
    """The BIO tag of each word said (the first ``said`` words of ``full_text``; all by default), and whether the
    cut fell inside a filler (its words said in part: "dial six five" of a ten-digit number)."""
    words = full_text.split()
    said = len(words) if said is None else said
    tags, partial = ["O"] * len(words), False
    for name, (_, a, b) in zip(slots_of(template), align(template, full_text)):
        for i in range(a, b):
            tags[i] = ("B-" if i == a else "I-") + name
        partial |= a < said < b
    return tags[:said], partial


def example(template: str, full_text: str, said: int | None = None) -> dict:
    words = full_text.split()
    said = len(words) if said is None else said
    tags, partial = word_tags(template, full_text, said)
    return {"text": " ".join(words[:said]), "full_text": " ".join(words), "tags": tags, "partial": partial,
            "signature": signature(template), "cut": said < len(words), "template": template}


def sample_examples(n: int, templates=None, p_cut: float = 0.5, p_filler: float = 0.1, seed: int = 0,
                    exclude: set[str] = frozenset()) -> list[dict]:
    """``n`` labelled texts drawn from ``templates`` (the audio templates by default), a filler ("um") inserted
    now and then, a share ``p_cut`` cut after a random spoken word as the corpus cuts (never before the first,
    never after the last but one); a text whose full sentence is in ``exclude`` is drawn again."""
    rng = np.random.default_rng(seed)
    templates = templates or T.AUDIO_TEMPLATES
    out, tries = [], 0
    while len(out) < n:
        tries += 1
        if tries > 20 * n:
            raise ValueError(f"could not draw {n} texts outside the excluded ones")
        t, marked = T.sample_text(rng, templates)
        words = T.plain(marked).split()
        if " ".join(words) in exclude:
            continue
        if len(words) > 1 and rng.random() < p_filler:
            i = int(rng.integers(1, len(words)))
            words.insert(i, str(rng.choice(T.FILLERS)))
        full = " ".join(words)
        spoken = [j for j, w in enumerate(words) if not re.fullmatch(_FILLER, w)]
        said = None
        if len(spoken) > 2 and rng.random() < p_cut:
            said = spoken[int(rng.integers(0, len(spoken) - 1))] + 1
        out.append(example(t.text, full, said))
    return out


def asr_examples(entries: list[dict], transcripts: list[str]) -> list[dict]:
    """Corpus entries as the recogniser heard them: the transcript is the text; signature, cut and cut-inside-a-
    filler come from the reference; each transcript word takes the tag of the reference word jiwer aligns it to
    (an inserted word is O). An empty transcript is left out."""
    import jiwer
    out = []
    for e, hyp in zip(entries, transcripts):
        words = hyp.split()
        if not words:
            continue
        ref = corpus_examples([e])[0]
        tags = ["O"] * len(words)
        for ch in jiwer.process_words(ref["text"], " ".join(words)).alignments[0]:
            if ch.type in ("equal", "substitute"):
                for k in range(ch.ref_end_idx - ch.ref_start_idx):
                    tags[ch.hyp_start_idx + k] = ref["tags"][ch.ref_start_idx + k]
        for k, t in enumerate(tags):            # an I- that no longer continues its slot begins one
            if t.startswith("I-") and (k == 0 or tags[k - 1][2:] != t[2:]):
                tags[k] = "B-" + t[2:]
        out.append({**ref, "text": " ".join(words), "tags": tags})
    return out


def corpus_examples(entries: list[dict]) -> list[dict]:
    """Corpus entries as labelled examples (their own cut, their own fillers)."""
    out = []
    for e in entries:
        full = e.get("full_text") or e["text"]
        said = len(e["text"].split()) if e.get("truncated") else None
        out.append(example(e["template"], full, said))
    return out


# ---------------------------------------------------------------- the model

class ParserNet(torch.nn.Module):
    """A causal LM's transformer with a tag head on every token and, on the last (the end symbol, the only one
    that knows the text ends there), the signature, cut-off and cut-inside-a-filler heads."""

    def __init__(self, backbone, hidden: int, n_tags: int, n_signatures: int):
        super().__init__()
        self.backbone = backbone
        self.tag = torch.nn.Linear(hidden, n_tags)
        self.signature = torch.nn.Linear(hidden, n_signatures)
        self.cut = torch.nn.Linear(hidden, 2)            # [cut off, cut inside a filler]

    def forward(self, ids: torch.Tensor, mask: torch.Tensor):
        h = self.backbone(input_ids=ids, attention_mask=mask).last_hidden_state
        last = h[torch.arange(len(ids), device=h.device), mask.sum(1) - 1]
        return self.tag(h), self.signature(last), self.cut(last)


def _word_ends(tok, text: str) -> tuple[list[int], int]:
    """Token ids of ``<s> text </s>`` and, for each word, the index of its last token."""
    enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
    starts, pos = [], 0
    for w in text.split():
        pos = text.index(w, pos)
        starts.append(pos)
        pos += len(w)
    ends = [0] * len(starts)
    for t, (_, b) in enumerate(enc["offset_mapping"]):
        # by the token's last character: a byte-level token's span starts with the space before its word
        w = max(0, int(np.searchsorted(starts, b - 1, side="right")) - 1)
        ends[w] = t + 1                      # +1: the <s> in front
    return [tok.bos_token_id] + enc["input_ids"] + [tok.eos_token_id], ends


@dataclass
class ParserConfig:
    n_train: int = 40000
    p_cut: float = 0.5
    batch_size: int = 64
    lr: float = 1e-3
    warmup_steps: int = 100
    max_steps: int = 1500
    val_every: int = 250
    asr_repeat: int = 3            # each transcript example this many times among the sampled texts
    seed: int = 0
    threads: int = 2


@dataclass
class Parse:
    """What the parser read: the ``graph`` (PENMAN), ``p_cut`` (the request was cut off), the ``signature`` and its
    probability, the tagged ``spans`` [(slot, words, first, end, partial)], ``truncated`` (p_cut over the
    threshold), ``p_partial`` (the cut fell inside the last filler)."""
    text: str
    graph: str
    p_cut: float
    truncated: bool
    signature: str
    p_signature: float
    spans: list = field(default_factory=list)
    p_partial: float = 0.0


class GraphParser:
    """The trained parser: ``parse(text)`` / ``parse_batch(texts)`` -> ``Parse``."""

    def __init__(self, net: ParserNet, tokenizer, signatures: list[str], threshold: float = 0.5,
                 min_signature: float = 0.3, max_tokens: int = 96, path: str = "", threshold_asr: float | None = None):
        self.net, self.tok, self.signatures = net.eval(), tokenizer, signatures
        # the P(cut) threshold for the recogniser's transcripts, chosen on its dev transcripts (text's by default)
        self.threshold_asr = threshold if threshold_asr is None else threshold_asr
        self.threshold, self.min_signature, self.max_tokens, self.path = threshold, min_signature, max_tokens, path
        self.owed_role_mbr = True      # a cut request's signature chosen by the owed role's total probability
        # the domain gate: text the domain LM finds less likely than any dev text or transcript is not a request
        # of this domain ("wo ist der bahnhof", "zxq blorf"): its graph is the unknown intent
        self.domain_lm, self.domain_floor = None, None
        intents = [" ".join(i for i, _ in _SIG.findall(s)) for s in signatures]
        self._same_intents = [[k for k, o in enumerate(intents) if o == it] for it in intents]

    def domain_logprob(self, texts: list[str]) -> np.ndarray:
        """Mean token log-probability of each text under the domain LM (no end symbol: a cut text is in domain)."""
        from ..lm.score import score_texts
        return np.array([s.mean for s in score_texts(self.domain_lm, texts, eos=False, batch_size=64)])

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def _check(self, text) -> str:
        if not isinstance(text, str):
            raise ParseError(f"the parser reads text, got {type(text).__name__}")
        words = text.split()
        if not words:
            raise ParseError("empty text: there is nothing to parse")
        return " ".join(words)

    @torch.inference_mode()
    def outputs(self, texts: list[str]):
        """(tag log-probs per word, signature probs, [P(cut), P(cut inside a filler)]) of each text, one padded
        forward pass."""
        enc = [_word_ends(self.tok, t) for t in texts]
        for t, (ids, _) in zip(texts, enc):
            if len(ids) > self.max_tokens:
                raise ParseError(f"text of {len(ids)} tokens is longer than the parser's {self.max_tokens}: "
                                 f"{t[:60]!r}...")
        L = max(len(ids) for ids, _ in enc)
        x = torch.full((len(enc), L), self.tok.pad_token_id, dtype=torch.long)
        m = torch.zeros_like(x)
        for i, (ids, _) in enumerate(enc):
            x[i, :len(ids)], m[i, :len(ids)] = torch.tensor(ids), 1
        tag, sig, cut = self.net(x.to(self.device), m.to(self.device))
        tag = tag.float().log_softmax(-1).cpu()
        return ([tag[i, ends] for i, (_, ends) in enumerate(enc)], sig.float().softmax(-1).cpu(),
                torch.sigmoid(cut.float()).cpu())

    def parse_batch(self, texts: list[str], threshold: float | None = None) -> list[Parse]:
        texts = [self._check(t) for t in texts]
        if not texts:
            return []
        th = self.threshold if threshold is None else threshold
        tags, sigs, cuts = self.outputs(texts)
        gate = self.domain_lm is not None and self.domain_floor is not None
        lp = self.domain_logprob(texts) if gate else np.zeros(len(texts))
        out = []
        for text, tg, sp, (pc, pp), lpi in zip(texts, tags, sigs, cuts.tolist(), lp):
            words = text.split()
            spans = decode_spans(words, [TAGS[int(i)] for i in tg.argmax(-1)])
            if pp >= 0.5 and spans and spans[-1][3] == len(words):     # the last filler was cut short
                spans[-1] = spans[-1][:4] + (True,)
            j = int(sp.argmax())
            # a short prefix leaves the signature open ("turn off the": which roles follow?) but not the intent:
            # the intents' summed probability says whether the parser knows what is asked at all
            p_intent = float(sum(sp[k] for k in self._same_intents[j]))
            cut = float(pc) >= th
            if cut and self.owed_role_mbr:
                j, p_intent = self._owed_role_mbr(sp, spans, len(words))
            sig = self.signatures[j] if p_intent >= self.min_signature else UNKNOWN_SIGNATURE
            if gate and lpi < self.domain_floor:
                sig = UNKNOWN_SIGNATURE
            out.append(Parse(text, graph_from(sig, spans, len(words), cut), float(pc), cut, sig, float(sp[j]), spans,
                             float(pp)))
        return out

    def _owed_role_mbr(self, sp, spans, n_words: int, k: int = 16, floor: float = 0.005) -> tuple[int, float]:
        """A cut request is read for the role it owes: the signatures are grouped by the first role their graph
        owes and the group with the most probability wins (its best signature is returned). After "set ▌" the
        single likeliest signature may be one alarm among many timer signatures that all owe a duration;
        choosing by the owed role's total probability is the minimum-Bayes-risk choice for the question asked. Returns
        the signature and the group's probability (which decides, as the intent's does for a whole request, whether
        the parser knows what is asked at all)."""
        from .repair import diagnose
        mass: dict = {}
        for p, i in zip(*(t.tolist() for t in torch.topk(sp, min(k, len(sp))))):
            if p < floor and mass:
                break
            missing = diagnose(graph_from(self.signatures[i], spans, n_words, True)).missing
            key = missing[0] if missing else None
            mass.setdefault(key, [0.0, i])[0] += p
        best = max(mass.values(), key=lambda v: v[0])
        return best[1], best[0]

    def parse(self, text: str, threshold: float | None = None) -> Parse:
        return self.parse_batch([text], threshold)[0]

    def answer_spans(self, text: str, answer: str) -> list:
        """The fillers in a user's answer to a clarifying question, read as the continuation of the cut request
        ("set a timer for" + "ten minutes": the parser has seen whole requests, not fragments); the answer alone
        when the continuation tags nothing in it."""
        n = len(self._check(text).split())
        spans = [s for s in self.parse(f"{text} {answer}").spans if s[2] >= n]
        return spans or self.parse(answer).spans


def decode_spans(words: list[str], tags: list[str], partial: bool = False) -> list[tuple[str, str, int, int, bool]]:
    """BIO tags -> [(slot, words without fillers, first, end, partial)]; an I- that does not continue its slot
    begins one; ``partial``: the span that ends the text was cut short."""
    spans, cur = [], None
    for i, t in enumerate(tags + ["O"]):
        kind, _, name = t.partition("-")
        if cur is not None and not (kind == "I" and name == cur[0]):
            spans.append(cur)
            cur = None
        if kind in ("B", "I") and cur is None:
            cur = [name, i, i + 1]
        elif cur is not None:
            cur[2] = i + 1
    return [(n, " ".join(w for w in words[a:b] if not re.fullmatch(_FILLER, w)), a, b, partial and b == len(words))
            for n, a, b in spans]


# ---------------------------------------------------------------- training (Lightning) and export

def _tensors(tok, examples: list[dict], sig_index: dict[str, int], max_tokens: int):
    rows = []
    for e in examples:
        ids, ends = _word_ends(tok, e["text"])
        if len(ids) > max_tokens:
            continue
        y = [-100] * len(ids)
        for w, t in zip(ends, e["tags"]):
            y[w] = TAGS.index(t)
        rows.append((ids, y, sig_index.get(e["signature"], -100), [float(e["cut"]), float(e["partial"])]))
    return rows


def _collate(rows, pad: int):
    L = max(len(r[0]) for r in rows)
    x = torch.full((len(rows), L), pad, dtype=torch.long)
    y = torch.full((len(rows), L), -100, dtype=torch.long)
    m = torch.zeros_like(x)
    for i, (ids, tags, _, _) in enumerate(rows):
        x[i, :len(ids)], y[i, :len(ids)], m[i, :len(ids)] = torch.tensor(ids), torch.tensor(tags), 1
    return x, m, y, torch.tensor([r[2] for r in rows]), torch.tensor([r[3] for r in rows])


class _Shuffled(torch.utils.data.IterableDataset):
    def __init__(self, rows, batch_size, pad, seed):
        super().__init__()
        self.rows, self.bs, self.pad, self.seed = rows, batch_size, pad, seed

    def __iter__(self):
        g, rows = torch.Generator().manual_seed(self.seed), shard(self.rows)   # each DDP rank its own texts
        while True:
            for b in torch.randperm(len(rows), generator=g).split(self.bs):
                yield _collate([rows[int(i)] for i in b], self.pad)


def _loss(net, batch):
    x, m, y, s, c = batch
    tag, sig, cut = net(x, m)                            # c: (batch, 2) cut off, cut inside a filler
    ce = torch.nn.functional.cross_entropy
    lt = ce(tag.reshape(-1, tag.shape[-1]), y.reshape(-1), ignore_index=-100)
    ls = ce(sig, s, ignore_index=-100)
    lc = torch.nn.functional.binary_cross_entropy_with_logits(cut, c)
    return lt + ls + lc, (lt, ls, lc)


def _module(net, cfg: ParserConfig, log=print):
    import lightning.pytorch as pl

    class ParserModule(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = net

        def training_step(self, batch, _):
            loss, (lt, ls, lc) = _loss(self.net, batch)
            self.log_dict({"train_loss": loss, "tag": lt, "sig": ls, "cut": lc}, prog_bar=True, batch_size=len(batch[0]))
            return loss

        def validation_step(self, batch, _):
            loss, _ = _loss(self.net, batch)
            self.log("val_loss", loss, prog_bar=True, batch_size=len(batch[0]))

        def on_validation_epoch_end(self):
            m = {k: round(float(v), 4) for k, v in self.trainer.callback_metrics.items()}
            log(f"step {self.trainer.global_step}: {m}")

        def configure_optimizers(self):
            from ..lm.domain import warmup_cosine
            return warmup_cosine(self.parameters(), cfg.lr, cfg.warmup_steps, cfg.max_steps)
    return ParserModule()


def detection_f1(p_cut, truth, threshold: float) -> float:
    pred = np.asarray(p_cut) >= threshold
    truth = np.asarray(truth, bool)
    tp = int((pred & truth).sum())
    return 2 * tp / max(1, int(pred.sum()) + int(truth.sum()))


def choose_threshold(p_cut, truth) -> float:
    """The cut-off threshold with the best detection F1 (ties: the one nearest 0.5)."""
    grid = np.round(np.arange(0.05, 0.96, 0.05), 2)
    scores = [(detection_f1(p_cut, truth, t), -abs(t - 0.5), t) for t in grid]
    return float(max(scores)[2])


def train_parser(dev_entries: list[dict], out: str | os.PathLike = DEFAULT, cfg: ParserConfig | None = None,
                 lm_path: str | os.PathLike | None = None, exclude: set[str] = frozenset(),
                 trainer_kwargs: dict | None = None, log=print, asr_train: list[dict] = (),
                 dev_transcripts: list[str] | None = None) -> dict:
    """Fine-tune the domain LM into the parser on sampled audio-template texts (and ``asr_train``, examples of the
    recogniser's transcripts from ``asr_examples``), validate and choose the cut-off threshold on ``dev_entries``
    (corpus entries) and, with ``dev_transcripts``, a second one on the recogniser's transcripts of them; export to
    ``out`` (written beside it and renamed)."""
    import lightning.pytorch as pl
    from ..lm.domain import load_domain_lm
    from ..lm.score import backbone
    cfg = cfg or ParserConfig()
    if not dev_entries:
        raise ValueError("the parser needs dev entries to choose its threshold")
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    t0 = time.time()
    lm = load_domain_lm(lm_path, device="cpu")
    tok = lm.tokenizer
    signatures = sorted({signature(t.text) for t in T.AUDIO_TEMPLATES})
    sig_index = {s: i for i, s in enumerate(signatures)}
    train = sample_examples(cfg.n_train, p_cut=cfg.p_cut, seed=cfg.seed, exclude=exclude) + \
        list(asr_train) * cfg.asr_repeat
    dev = corpus_examples(dev_entries)
    max_tokens = lm.max_tokens
    rows, dev_rows = _tensors(tok, train, sig_index, max_tokens), _tensors(tok, dev, sig_index, max_tokens)
    net = ParserNet(backbone(lm.model), lm.model.config.hidden_size, len(TAGS), len(signatures))
    out = Path(out)
    tmp = out.with_name(f".{out.name}.training-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        dev_batches = [_collate(dev_rows[i:i + 256], tok.pad_token_id) for i in range(0, len(dev_rows), 256)]
        kw = dict(max_steps=cfg.max_steps, accelerator="auto", devices=1, logger=False, enable_checkpointing=False,
                  val_check_interval=min(cfg.val_every, cfg.max_steps), check_val_every_n_epoch=None,
                  num_sanity_val_steps=0, enable_progress_bar=False, gradient_clip_val=1.0)
        kw.update(trainer_kwargs or {})
        module = _module(net, cfg, log)
        loader = torch.utils.data.DataLoader
        trainer = pl.Trainer(**kw)
        trainer.fit(module, train_dataloaders=loader(_Shuffled(rows, cfg.batch_size, tok.pad_token_id, cfg.seed),
                                                     batch_size=None),
                    val_dataloaders=loader(dev_batches, batch_size=None))
        finish_ranks(trainer)                       # DDP: rank 0 goes on to export
        net = module.net.cpu().eval()
        parser = GraphParser(net, tok, signatures, max_tokens=max_tokens)
        parses = parser.parse_batch([e["text"] for e in dev])
        threshold = choose_threshold([p.p_cut for p in parses], [e["cut"] for e in dev])
        asr_dev = {}
        if dev_transcripts is not None:
            heard = [(t, e) for t, e in zip(dev_transcripts, dev) if t.split()]
            pc = [p.p_cut for p in parser.parse_batch([t for t, _ in heard])]
            truth = [e["cut"] for _, e in heard]
            th = choose_threshold(pc, truth)
            asr_dev = {"threshold_asr": th, "detection_f1_asr": round(detection_f1(pc, truth, th), 4),
                       "detection_f1_asr_at_text_threshold": round(detection_f1(pc, truth, threshold), 4)}
        meta = {"config": asdict(cfg), "lm": str(lm_path or "data/models/lm_domain"), "signatures": signatures,
                "tags": TAGS, "threshold": threshold, "threshold_asr": asr_dev.get("threshold_asr", threshold),
                "asr_train_examples": len(asr_train), "min_signature": parser.min_signature, "max_tokens": max_tokens,
                "params": sum(p.numel() for p in net.parameters()), "train_examples": len(rows),
                "dev_examples": len(dev_rows), "train_seconds": round(time.time() - t0, 1),
                "dev": {"detection_f1": round(detection_f1([p.p_cut for p in parses], [e["cut"] for e in dev],
                                                           threshold), 4),
                        "signature_accuracy": round(float(np.mean([p.signature == e["signature"]
                                                                   for p, e in zip(parses, dev)])), 4)} | asr_dev}
        save_parser(net, tok, meta, tmp)
        replace_dir(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log(f"parser: {json.dumps(meta['dev'])} threshold {threshold} in {meta['train_seconds']} s")
    return meta


def save_parser(net: ParserNet, tok, meta: dict, out: Path) -> None:
    from safetensors.torch import save_file
    out.mkdir(parents=True, exist_ok=True)
    net.backbone.config.save_pretrained(out)
    tok.save_pretrained(str(out))
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(out / "parser.safetensors"))
    (out / "parser.json").write_text(json.dumps(meta, indent=1))


def load_parser(path: str | os.PathLike | None = None, device: str | None = None) -> GraphParser:
    """The shipped parser (``data/models/repair_parser``) or another export of :func:`train_parser`."""
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModel, AutoTokenizer
    from ..hub import ModelNotAvailableError
    p = Path(path or DEFAULT)
    if not (p / "parser.safetensors").exists() or not (p / "parser.json").exists():
        raise ModelNotAvailableError(f"no trained parser at {p} (python -m workbench train-parser makes one)")
    meta = json.loads((p / "parser.json").read_text())
    cfg = AutoConfig.from_pretrained(p)
    net = ParserNet(AutoModel.from_config(cfg), cfg.hidden_size, len(meta["tags"]), len(meta["signatures"]))
    net.load_state_dict(load_file(str(p / "parser.safetensors")))
    dev = device or ("cuda" if torch.cuda.is_available() else "cpu")
    parser = GraphParser(net.to(dev), AutoTokenizer.from_pretrained(p), meta["signatures"], meta["threshold"],
                         meta.get("min_signature", 0.3), meta.get("max_tokens", 96), str(p), meta.get("threshold_asr"))
    if meta.get("domain_floor") is not None:
        parser.domain_lm, parser.domain_floor = _domain_lm(meta, dev), float(meta["domain_floor"])
    return parser


def _domain_lm(meta: dict, device):
    """The domain LM the parser grew from (``meta["lm"]``, relative to the repository), for the domain gate."""
    from ..lm.domain import load_domain_lm
    lm = Path(meta["lm"])
    return load_domain_lm(lm if lm.is_absolute() else MODELS.parents[1] / lm, device=str(device))


def set_domain_gate(parser: GraphParser, dev_texts: list[str], margin: float = 0.25, save: bool = True) -> float:
    """Choose the domain gate's floor on dev: the lowest mean token log-probability the domain LM gives any of
    ``dev_texts`` (the dev split's texts, its every cut and its transcripts: what the parser must keep reading),
    less ``margin``; stored in the parser's ``parser.json`` when ``save``."""
    meta_path = Path(parser.path or DEFAULT) / "parser.json"
    meta = json.loads(meta_path.read_text())
    if parser.domain_lm is None:
        parser.domain_lm = _domain_lm(meta, parser.device)
    texts = [t for t in dev_texts if t.split()]
    parser.domain_floor = round(float(parser.domain_logprob(texts).min()) - margin, 3)
    if save:
        meta["domain_floor"] = parser.domain_floor
        meta["domain_floor_from"] = {"texts": len(texts), "margin": margin}
        tmp = meta_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(meta, indent=1))
        os.replace(tmp, meta_path)
    return parser.domain_floor


def train_from_corpus(corpus_size: str = "default", out: str | os.PathLike | None = None,
                      cfg: ParserConfig | None = None, trainer_kwargs: dict | None = None, log=print,
                      asr_from: int | None = 4000) -> dict:
    """``python -m workbench train-parser``: the parser on sampled audio-template texts (no held-out template, and
    none of the corpus's dev or test sentences that its train split lacks: a sentence without slots, "tell me a
    joke", is in every split), its threshold chosen on the corpus's dev split. ``asr_from``: also learn from the
    recogniser's transcripts of the dev speakers' split extended to that many utterances (``corpus_with_more``),
    whose errors make complete requests look cut; its first utterances, the dev split, choose a second threshold
    for transcripts (0 or None: text only)."""
    from ..data import ensure_corpus, open_dataset
    corpus = ensure_corpus(corpus_size)

    def sentences(split):
        return {T.plain(e.get("full_text") or e["text"]) for e in open_dataset(corpus, split).entries}
    held = set()
    for split in ("dev", "test", "test_unseen_engine", "test_unseen_text"):
        held |= sentences(split)
    held -= sentences("train")
    dev = open_dataset(corpus, "dev").entries
    asr_train, dev_transcripts = (), None
    if asr_from:
        # the recogniser's transcripts of fresh sentences by the dev speakers (never in its training audio); the
        # first len(dev) of them are the dev split itself, byte for byte: those choose the threshold, the rest train
        from ..data.corpus import corpus_with_more
        from .evaluation import asr_texts
        more = corpus_with_more("dev", asr_from, corpus_size)
        entries = open_dataset(more, "dev").entries
        heard = asr_texts(more, "dev", log=log)
        dev_transcripts = heard[:len(dev)]
        asr_train = asr_examples(entries[len(dev):], heard[len(dev):])
        log(f"parser: {len(asr_train)} transcripts to learn from, {len(dev_transcripts)} dev transcripts")
    res = train_parser(dev, out or DEFAULT, cfg, exclude=held, trainer_kwargs=trainer_kwargs, log=log,
                       asr_train=asr_train, dev_transcripts=dev_transcripts)
    from .evaluation import every_cut
    res["domain_floor"] = set_domain_gate(load_parser(out or DEFAULT, device="cpu"),
                                          [e["text"] for e in every_cut(dev)] + list(dev_transcripts or []))
    log(f"parser: domain gate at mean token log-probability {res['domain_floor']}")
    return res
