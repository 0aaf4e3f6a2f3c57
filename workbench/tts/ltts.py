"""The large TTS and its conventional baseline: one ESPnet FastSpeech2, two text encoders.

Design (b) of the issue: the LLM's hidden states drive a non-autoregressive synthesiser. Both systems are ESPnet's
``FastSpeech2`` (duration, pitch and energy predictors, length regulator, transformer decoder) writing the WORLD
parameters the codec also codes, turned into audio by WORLD synthesis. They differ only in what reads the text:
- ``baseline``: FastSpeech2's own conformer encoder over the tokens, trained from scratch (the "existing model");
- ``ltts``: a causal LLM from ``workbench.lm`` (the domain LM trained here by default, SmolLM2-135M in the ``gpu``
  profile; same code) with LoRA adapters, whose last hidden states, projected, replace that encoder. The synthesis
  loss flows back into the adapters: the LLM is fine-tuned *in tandem* with the synthesiser.
Both read the same tokens (the LLM's tokenizer) of the same tagged text, stage directions included as text, so
the comparison isolates the encoder. Durations come from the corpus's element times (corpus.py), split over an
element's tokens by their length in characters; pitch and energy targets are token averages of the normalised
log F0 (voiced frames) and envelope energy (c0).
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ..codec import world
from .styles import parse

MODELS = Path(__file__).resolve().parents[2] / "data" / "models"


class TTSModelError(ValueError):
    """A synthesiser folder that is missing, of another format, or a configuration that cannot be built."""


@dataclass
class TTSConfig:
    system: str = "ltts"                 # "ltts" (LLM encoder, LoRA) or "baseline" (FastSpeech2's own encoder)
    lm: str = "domain"                   # "domain" (data/models/lm_domain), "smollm2", or an LM folder
    adim: int = 192
    heads: int = 2
    elayers: int = 3                     # the baseline's conformer encoder
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


class LLMEncoder(torch.nn.Module):
    """A causal LM's last hidden states, projected to the synthesiser's width, in place of FastSpeech2's encoder
    (same call: token ids and the (B, 1, T) source mask in, (B, T, adim) out). FastSpeech2's end-of-sequence id is
    mapped to the LM's own."""

    def __init__(self, lm: torch.nn.Module, adim: int, fs2_eos: int, lm_eos: int):
        super().__init__()
        self.lm, self.fs2_eos, self.lm_eos = lm, fs2_eos, lm_eos
        self.proj = torch.nn.Linear(int(lm.config.hidden_size), adim)

    def forward(self, xs: torch.Tensor, masks: torch.Tensor):
        from ..lm.score import backbone
        ids = torch.where(xs == self.fs2_eos, torch.full_like(xs, self.lm_eos), xs)
        h = backbone(self.lm)(input_ids=ids, attention_mask=masks[:, 0].long()).last_hidden_state
        return self.proj(h.float()), masks


class Synthesiser(torch.nn.Module):
    """Tagged text -> WORLD parameters -> 16 kHz audio. ``fs2`` is ESPnet's FastSpeech2 (its encoder replaced by
    an ``LLMEncoder`` for the LTTS)."""

    def __init__(self, cfg: TTSConfig, tokenizer, lm: torch.nn.Module | None = None, dim: int | None = None):
        super().__init__()
        from espnet2.tts.fastspeech2 import FastSpeech2
        self.cfg, self.tokenizer = cfg, tokenizer
        dim = dim or world.frame_dim()
        self.vocab = len(tokenizer)
        self.fs2 = FastSpeech2(
            idim=self.vocab + 1, odim=dim, adim=cfg.adim, aheads=cfg.heads, elayers=cfg.elayers, eunits=cfg.units,
            dlayers=cfg.dlayers, dunits=cfg.units, postnet_layers=cfg.postnet_layers, encoder_type="conformer",
            decoder_type="transformer", duration_predictor_chans=cfg.adim, pitch_predictor_chans=cfg.adim,
            energy_predictor_chans=cfg.adim, use_masking=True, reduction_factor=cfg.reduction)
        if cfg.system == "ltts":
            if lm is None:
                raise TTSModelError("the LTTS needs its LM")
            eos = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
            self.fs2.encoder = LLMEncoder(lm, cfg.adim, self.fs2.eos, eos)
        self.register_buffer("mu", torch.zeros(dim))
        self.register_buffer("sd", torch.ones(dim))

    # --- targets -----------------------------------------------------------------------------------------
    def tokens(self, elements: list[str]) -> tuple[list[int], list[int]]:
        """Token ids of a tagged text's elements and, per token, the index of its element."""
        ids, owner = [], []
        for i, e in enumerate(elements):
            t = self.tokenizer.encode(("" if i == 0 else " ") + e, add_special_tokens=False)
            ids += t
            owner += [i] * len(t)
        if not ids:
            raise TTSModelError("nothing to say: no tokens")
        return ids, owner

    def targets(self, item: dict) -> dict:
        """Training targets of one corpus item (corpus.py): token ids, per-token durations in decoder steps (+ 0 for
        the end-of-sequence token), token-averaged pitch and energy, and the normalised frames (a whole number of
        decoder steps)."""
        r = self.cfg.reduction
        params = item["params"][: len(item["params"]) // r * r]
        n = len(params) // r                                 # decoder steps
        starts = [min(n, int(round(f / r))) for f in item["element_frames"]]
        els = item["elements"]
        counts = np.diff(starts + [n])
        ids, owner = self.tokens(els)
        dur = []
        for i, c in enumerate(counts):
            toks = [k for k, o in enumerate(owner) if o == i]
            w = np.array([len(self.tokenizer.decode([ids[k]]).strip()) or 1 for k in toks], float)
            edges = np.round(np.concatenate([[0], np.cumsum(w) / w.sum()]) * c).astype(int)
            dur += list(np.diff(edges))
        dur = np.array(dur + [0], np.int64)
        assert dur.sum() == n, (dur.sum(), n)
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
        return {"ids": torch.tensor(ids), "durations": torch.from_numpy(dur), "pitch": torch.from_numpy(pitch)[:, None],
                "energy": torch.from_numpy(energy)[:, None], "feats": feats.float()}

    def loss(self, batch: list[dict]) -> tuple[torch.Tensor, dict]:
        pad = torch.nn.utils.rnn.pad_sequence
        dev = self.mu.device
        lens = lambda key: torch.tensor([len(b[key]) for b in batch], device=dev)   # noqa: E731
        get = lambda key: pad([b[key] for b in batch], batch_first=True).to(dev)   # noqa: E731
        loss, stats, _ = self.fs2(text=get("ids"), text_lengths=lens("ids"), feats=get("feats"),
                                  feats_lengths=lens("feats"), durations=get("durations"),
                                  durations_lengths=lens("durations"), pitch=get("pitch"), pitch_lengths=lens("pitch"),
                                  energy=get("energy"), energy_lengths=lens("energy"))
        return loss, stats

    # --- synthesis ---------------------------------------------------------------------------------------
    @torch.inference_mode()
    def params(self, tagged: str) -> np.ndarray:
        """WORLD parameters (frames, dim) for a tagged text (styles.py syntax; typed errors for bad input)."""
        from .corpus import ELEMENT
        parse(tagged)                                      # empty, too long, unknown tag, other script: typed errors
        ids, _ = self.tokens(ELEMENT.findall(tagged))
        out = self.fs2.inference(torch.tensor(ids, device=self.mu.device))
        return (out["feat_gen"] * self.sd + self.mu).cpu().numpy()

    def synthesise(self, tagged: str) -> np.ndarray:
        """16 kHz float32 audio."""
        return world.synthesise(self.params(tagged))

    # --- files -------------------------------------------------------------------------------------------
    def save(self, folder: str | os.PathLike, extra: dict | None = None) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        if self.cfg.system == "ltts" and hasattr(self.fs2.encoder.lm, "merge_and_unload"):
            self.fs2.encoder.lm = self.fs2.encoder.lm.merge_and_unload()      # LoRA folded into the weights
        self.tokenizer.save_pretrained(str(folder / "tokenizer"))
        meta = {"format": "workbench-tts-v1", "config": asdict(self.cfg), "dim": int(self.mu.numel())}
        if self.cfg.system == "ltts":
            meta["lm_config"] = self.fs2.encoder.lm.config.to_dict()
        meta.update(extra or {})
        torch.save({k: v.half() if v.is_floating_point() else v for k, v in self.state_dict().items()},
                   folder / "model.pt")
        (folder / "tts.json").write_text(json.dumps(meta, indent=1, default=str))
        return folder


def new_synthesiser(cfg: TTSConfig, device: str = "cpu") -> Synthesiser:
    """A fresh synthesiser: for the LTTS, the LM loaded (``workbench.lm``) and LoRA adapters put on it."""
    from transformers import AutoTokenizer
    from ..lm.load import load_causal_lm
    folder = _lm_folder(cfg.lm)
    if cfg.system == "baseline":                      # the LM's tokenizer only
        tok = AutoTokenizer.from_pretrained(folder) if Path(folder).is_dir() else load_causal_lm(folder).tokenizer
        return Synthesiser(cfg, tok).to(device)
    from peft import LoraConfig, get_peft_model
    lm = load_causal_lm(folder, device=device)
    pc = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=0.0, target_modules=list(cfg.target_modules),
                    bias="none")
    model = get_peft_model(lm.model.float(), pc)
    return Synthesiser(cfg, lm.tokenizer, model).to(device)


def load_synthesiser(folder: str | os.PathLike, device: str = "cpu") -> Synthesiser:
    """A saved synthesiser (``Synthesiser.save``); the LTTS's LM is rebuilt from its saved config (LoRA merged)."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    folder = Path(folder)
    f = folder / "tts.json"
    if not f.is_file():
        raise TTSModelError(f"no synthesiser at {folder} (tts.json missing): train one with "
                            "`python -m workbench train-tts`")
    meta = json.loads(f.read_text())
    if meta.get("format") != "workbench-tts-v1":
        raise TTSModelError(f"{folder}: unknown synthesiser format {meta.get('format')!r}")
    c = meta["config"]
    cfg = TTSConfig(**{**c, "target_modules": tuple(c["target_modules"])})
    tok = AutoTokenizer.from_pretrained(str(folder / "tokenizer"))
    lm = None
    if cfg.system == "ltts":
        lc = AutoConfig.for_model(**meta["lm_config"])
        lm = AutoModelForCausalLM.from_config(lc)
    syn = Synthesiser(cfg, tok, lm, dim=meta["dim"])
    syn.load_state_dict({k: v.float() if v.is_floating_point() else v
                         for k, v in torch.load(folder / "model.pt", map_location="cpu").items()})
    syn.meta = meta
    return syn.to(device).eval()
