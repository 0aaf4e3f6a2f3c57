"""The large TTS and its conventional baseline: one ESPnet FastSpeech2 over phonemes; the LTTS adds an LLM.

Design (b) of the issue: the LLM's hidden states drive a non-autoregressive synthesiser. Both systems are ESPnet's
``FastSpeech2`` (conformer encoder, duration, pitch and energy predictors, length regulator, transformer decoder)
reading the same symbols (frontend.py: espeak-ng's phonemes of the words and one symbol per stage direction) and
writing the WORLD parameters the codec also codes, turned into audio by WORLD synthesis. They differ in one thing:
- ``baseline``: FastSpeech2 alone (the conventional "existing model");
- ``ltts``: a causal LLM from ``workbench.lm`` (the domain LM trained here by default, SmolLM2-135M in the ``gpu``
  profile; same code) reads the tagged text as text; its last hidden states, averaged over each word's (or tag's)
  tokens and projected, are added to the encoder's output at every phoneme of that word, as Hayashi et al. (2019)
  add BERT's. The synthesis loss flows back into the LLM's LoRA adapters: the LLM is fine-tuned *in tandem* with
  the synthesiser, and what it adds is what FastSpeech2 cannot see in phonemes alone (sentence type, what a
  direction means for the words around it).
Durations are espeak-ng's phoneme times from the corpus (no aligner); pitch and energy targets are per-symbol
averages of the normalised log F0 (voiced frames) and envelope energy (c0).
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ..codec import world

MODELS = Path(__file__).resolve().parents[2] / "data" / "models"
FORMAT = "workbench-tts-v2"          # v2: phoneme symbols (v1 read the LM's tokens)


class TTSModelError(ValueError):
    """A synthesiser folder that is missing, of another format, or a configuration that cannot be built."""


@dataclass
class TTSConfig:
    system: str = "ltts"                 # "ltts" (LLM encoder, LoRA) or "baseline" (FastSpeech2's own encoder)
    lm: str = "domain"                   # "domain" (data/models/lm_domain), "smollm2", or an LM folder
    adim: int = 192
    heads: int = 2
    elayers: int = 3                     # FastSpeech2's conformer encoder (both systems)
    dlayers: int = 3
    units: int = 768
    postnet_layers: int = 0
    reduction: int = 2                   # output frames per decoder step (durations in units of 10 ms * reduction)
    lora_r: int = 16
    lora_alpha: int = 32
    target_modules: tuple = ("q_proj", "k_proj", "v_proj", "o_proj")

    def __post_init__(self):
        if self.system not in ("ltts", "baseline"):
            raise TTSModelError(f"system must be 'ltts' or 'baseline', got {self.system!r}")


def _lm_folder(name: str) -> str:
    if name == "domain":
        return str(MODELS / "lm_domain")
    if name == "smollm2":
        from ..lm.load import SMOLLM2
        return SMOLLM2
    return name


class LLMContext(torch.nn.Module):
    """A causal LM's last hidden states, averaged over each element's tokens (``pool``: symbols x tokens) and
    projected to the synthesiser's width: what the LTTS adds at every symbol of that element."""

    def __init__(self, lm: torch.nn.Module, adim: int):
        super().__init__()
        self.lm = lm
        self.proj = torch.nn.Linear(int(lm.config.hidden_size), adim)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor, pool: torch.Tensor) -> torch.Tensor:
        from ..lm.score import backbone
        h = backbone(self.lm)(input_ids=ids, attention_mask=mask.long()).last_hidden_state
        return self.proj(torch.bmm(pool, h.float()))


class FusedEncoder(torch.nn.Module):
    """FastSpeech2's own encoder over the symbols plus the LLM's context of each symbol's element. FastSpeech2 hands
    its encoder only symbol ids, so the LLM's inputs for the batch are set on ``context`` just before each call
    (``Synthesiser`` does this and clears it)."""

    def __init__(self, encoder: torch.nn.Module, llm: LLMContext):
        super().__init__()
        self.encoder, self.llm = encoder, llm
        self.context: tuple | None = None

    def forward(self, xs: torch.Tensor, masks: torch.Tensor):
        hs, masks = self.encoder(xs, masks)
        if self.context is None:
            raise TTSModelError("the LTTS's encoder was called without the LLM's inputs")
        return hs + self.llm(*self.context)[:, : hs.size(1)], masks


SPECIAL = ("<pad>", "<unk>")


def vocabulary(items: list[dict]) -> list[str]:
    """The symbols a synthesiser reads: padding, unknown, every stage direction and every phoneme in ``items``."""
    from .frontend import TAGS
    phones = sorted({s for it in items for s in it["symbols"]} - set(TAGS))
    return list(SPECIAL) + list(TAGS) + phones


class Synthesiser(torch.nn.Module):
    """Tagged text -> symbols -> WORLD parameters -> 16 kHz audio. ``fs2`` is ESPnet's FastSpeech2 (its encoder
    wrapped in a ``FusedEncoder`` for the LTTS)."""

    def __init__(self, cfg: TTSConfig, symbols: list[str], tokenizer=None, lm: torch.nn.Module | None = None,
                 dim: int | None = None):
        super().__init__()
        from espnet2.tts.fastspeech2 import FastSpeech2
        self.cfg, self.tokenizer, self.symbols = cfg, tokenizer, list(symbols)
        self.index = {s: i for i, s in enumerate(self.symbols)}
        dim = dim or world.frame_dim()
        self.fs2 = FastSpeech2(
            idim=len(self.symbols) + 1, odim=dim, adim=cfg.adim, aheads=cfg.heads, elayers=cfg.elayers,
            eunits=cfg.units, dlayers=cfg.dlayers, dunits=cfg.units, postnet_layers=cfg.postnet_layers,
            encoder_type="conformer", decoder_type="transformer", duration_predictor_chans=cfg.adim,
            pitch_predictor_chans=cfg.adim, energy_predictor_chans=cfg.adim, use_masking=True,
            reduction_factor=cfg.reduction)
        if cfg.system == "ltts":
            if lm is None or tokenizer is None:
                raise TTSModelError("the LTTS needs its LM and the LM's tokenizer")
            self.fs2.encoder = FusedEncoder(self.fs2.encoder, LLMContext(lm, cfg.adim))
        self.register_buffer("mu", torch.zeros(dim))
        self.register_buffer("sd", torch.ones(dim))

    # --- inputs ------------------------------------------------------------------------------------------
    def ids(self, names: list[str]) -> list[int]:
        """Symbol ids; a phoneme never seen in training reads as ``<unk>``."""
        if not names:
            raise TTSModelError("nothing to say: no symbols")
        return [self.index.get(n, 1) for n in names]

    def tokens(self, elements: list[str]) -> tuple[list[int], list[int]]:
        """The LLM's token ids of a tagged text's elements and, per token, the index of its element."""
        ids, owner = [], []
        for i, e in enumerate(elements):
            t = self.tokenizer.encode(("" if i == 0 else " ") + e, add_special_tokens=False)
            ids += t
            owner += [i] * len(t)
        return ids, owner

    def pool(self, elements: list[str], symbol_owner) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids and the (symbols + eos, tokens) averaging matrix from tokens to each symbol's element."""
        ids, owner = self.tokens(elements)
        owner = np.asarray(owner)
        p = torch.zeros(len(symbol_owner) + 1, len(ids))
        for s, o in enumerate(symbol_owner):
            k = np.flatnonzero(owner == o)
            p[s, k] = 1.0 / len(k)
        return torch.tensor(ids), p

    def targets(self, item: dict) -> dict:
        """Training targets of one corpus item (corpus.py): symbol ids, per-symbol durations in decoder steps (+ 0
        for FastSpeech2's end-of-sequence), per-symbol pitch and energy, the normalised frames (a whole number of
        decoder steps) and, for the LTTS, the LLM's tokens with their pooling matrix."""
        r = self.cfg.reduction
        params = item["params"][: len(item["params"]) // r * r]
        n = len(params) // r                                 # decoder steps
        starts = [min(n, int(round(f / r))) for f in item["symbol_frames"]]
        starts[0] = 0
        dur = np.array(list(np.diff(starts + [n])) + [0], np.int64)
        assert dur.sum() == n and (dur >= 0).all(), (dur.sum(), n)
        feats = (torch.from_numpy(params) - self.mu) / self.sd
        k = world.N_KEEP + world.n_ap()
        lf0, voiced, c0 = feats[:, k].numpy(), params[:, -1] > 0.5, feats[:, 0].numpy()
        edges = np.concatenate([[0], np.cumsum(dur)]) * r
        pitch = np.zeros(len(dur), np.float32)
        energy = np.zeros(len(dur), np.float32)
        for j in range(len(dur)):
            a, b = edges[j], edges[j + 1]
            if b > a:
                v = voiced[a:b]
                pitch[j] = lf0[a:b][v].mean() if v.any() else 0.0
                energy[j] = c0[a:b].mean()
        out = {"ids": torch.tensor(self.ids(list(item["symbols"]))), "durations": torch.from_numpy(dur),
               "pitch": torch.from_numpy(pitch)[:, None], "energy": torch.from_numpy(energy)[:, None],
               "feats": feats.float()}
        if self.cfg.system == "ltts":
            out["tokens"], out["pool"] = self.pool(item["elements"], item["symbol_owner"])
        return out

    def _context(self, batch: list[dict]) -> tuple | None:
        if self.cfg.system != "ltts":
            return None
        dev = self.mu.device
        toks = torch.nn.utils.rnn.pad_sequence([b["tokens"] for b in batch], batch_first=True).to(dev)
        mask = torch.zeros(toks.shape, dtype=torch.bool, device=dev)
        pool = torch.zeros(len(batch), max(len(b["pool"]) for b in batch), toks.size(1), device=dev)
        for i, b in enumerate(batch):
            mask[i, : len(b["tokens"])] = True
            pool[i, : b["pool"].size(0), : b["pool"].size(1)] = b["pool"]
        return toks, mask, pool

    def _run(self, context, fn):
        if context is None:
            return fn()
        self.fs2.encoder.context = context
        try:
            return fn()
        finally:
            self.fs2.encoder.context = None

    def loss(self, batch: list[dict]) -> tuple[torch.Tensor, dict]:
        pad = torch.nn.utils.rnn.pad_sequence
        dev = self.mu.device
        lens = lambda key: torch.tensor([len(b[key]) for b in batch], device=dev)   # noqa: E731
        get = lambda key: pad([b[key] for b in batch], batch_first=True).to(dev)   # noqa: E731
        loss, stats, _ = self._run(self._context(batch), lambda: self.fs2(
            text=get("ids"), text_lengths=lens("ids"), feats=get("feats"), feats_lengths=lens("feats"),
            durations=get("durations"), durations_lengths=lens("durations"), pitch=get("pitch"),
            pitch_lengths=lens("pitch"), energy=get("energy"), energy_lengths=lens("energy")))
        return loss, stats

    # --- synthesis ---------------------------------------------------------------------------------------
    @torch.inference_mode()
    def params(self, tagged: str) -> np.ndarray:
        """WORLD parameters (frames, dim) for a tagged text (styles.py syntax; typed errors for bad input)."""
        from .frontend import phonemise
        sym = phonemise(tagged)                    # empty, too long, unknown tag, other script: typed errors
        item = {"ids": torch.tensor(self.ids(sym.names))}
        if self.cfg.system == "ltts":
            item["tokens"], item["pool"] = self.pool(sym.elements, sym.owner)
            limit = int(getattr(self.fs2.encoder.llm.lm.config, "max_position_embeddings", 0) or 1 << 30)
            if len(item["tokens"]) > limit:
                from .styles import StageDirectionError
                raise StageDirectionError(f"text too long for the LTTS's LM ({len(item['tokens'])} tokens; at most "
                                          f"{limit}): split it into sentences")
        out = self._run(self._context([item]), lambda: self.fs2.inference(item["ids"].to(self.mu.device)))
        return (out["feat_gen"] * self.sd + self.mu).cpu().numpy()

    def synthesise(self, tagged: str) -> np.ndarray:
        """16 kHz float32 audio."""
        return world.synthesise(self.params(tagged))

    # --- files -------------------------------------------------------------------------------------------
    def save(self, folder: str | os.PathLike, extra: dict | None = None) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        meta = {"format": FORMAT, "config": asdict(self.cfg), "dim": int(self.mu.numel()), "symbols": self.symbols}
        if self.cfg.system == "ltts":
            llm = self.fs2.encoder.llm
            if hasattr(llm.lm, "merge_and_unload"):
                llm.lm = llm.lm.merge_and_unload()                          # LoRA folded into the weights
            self.tokenizer.save_pretrained(str(folder / "tokenizer"))
            meta["lm_config"] = llm.lm.config.to_dict()
        meta.update(extra or {})
        torch.save({k: v.half() if v.is_floating_point() else v for k, v in self.state_dict().items()},
                   folder / "model.pt")
        (folder / "tts.json").write_text(json.dumps(meta, indent=1, default=str))
        return folder


def new_synthesiser(cfg: TTSConfig, symbols: list[str], device: str = "cpu") -> Synthesiser:
    """A fresh synthesiser over ``symbols`` (``vocabulary``): for the LTTS, the LM loaded (``workbench.lm``) and LoRA
    adapters put on it."""
    if cfg.system == "baseline":
        return Synthesiser(cfg, symbols).to(device)
    from peft import LoraConfig, get_peft_model
    from ..lm.load import load_causal_lm
    lm = load_causal_lm(_lm_folder(cfg.lm), device=device)
    pc = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=0.0, target_modules=list(cfg.target_modules),
                    bias="none")
    model = get_peft_model(lm.model.float(), pc)
    return Synthesiser(cfg, symbols, lm.tokenizer, model).to(device)


def load_synthesiser(folder: str | os.PathLike, device: str = "cpu") -> Synthesiser:
    """A saved synthesiser (``Synthesiser.save``); the LTTS's LM is rebuilt from its saved config (LoRA merged)."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    folder = Path(folder)
    f = folder / "tts.json"
    if not f.is_file():
        raise TTSModelError(f"no synthesiser at {folder} (tts.json missing): train one with "
                            "`python -m workbench train-tts`")
    meta = json.loads(f.read_text())
    if meta.get("format") != FORMAT:
        raise TTSModelError(f"{folder}: synthesiser format {meta.get('format')!r}, this workbench reads {FORMAT!r} "
                            "(retrain with `python -m workbench train-tts`)")
    c = meta["config"]
    cfg = TTSConfig(**{**c, "target_modules": tuple(c["target_modules"])})
    tok = lm = None
    if cfg.system == "ltts":
        tok = AutoTokenizer.from_pretrained(str(folder / "tokenizer"))
        lm = AutoModelForCausalLM.from_config(AutoConfig.for_model(**meta["lm_config"]))
    syn = Synthesiser(cfg, meta["symbols"], tok, lm, dim=meta["dim"])
    syn.load_state_dict({k: v.float() if v.is_floating_point() else v
                         for k, v in torch.load(folder / "model.pt", map_location="cpu").items()})
    syn.meta = meta
    return syn.to(device).eval()
