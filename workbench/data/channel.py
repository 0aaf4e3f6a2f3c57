"""Channel variety a real microphone or line brings, applied to training audio by sox and ffmpeg.

Why: every training voice so far is a clean synthesiser at 16 kHz, while a person reaches the recogniser through
a room, a telephone line, a lossy codec or a laptop microphone. Each kind here is one well-known transform from
a kept tool, never a filter written by hand:

- ``telephone``: G.711 µ-law at 8 kHz in the 300-3,400 Hz band (sox), back to 16 kHz;
- ``reverb``: sox's reverberator (room size, reverberance and pre-delay drawn per utterance);
- ``codec``: Opus at 8-16 kbit/s through ffmpeg (libopus), decoded back;
- ``mic``: a microphone's colouring (sox bass/treble shelves and a high-pass) and a level change.

The time axis is kept (no tempo change, codec delay compensated by the decoder), so the corpus's speech start
and end stay valid for the <EOU> labels. Variants are written once into a cache folder and reused.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import zlib
from pathlib import Path

import numpy as np

KINDS = ("telephone", "reverb", "codec", "mic")


class ChannelError(RuntimeError):
    """A channel transform that could not run (the message names the tool and what it said)."""


def _run(cmd: list[str]) -> None:
    if shutil.which(cmd[0]) is None:
        raise ChannelError(f"{cmd[0]} is not installed (make setup installs sox and ffmpeg)")
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise ChannelError(f"{cmd[0]} failed ({p.returncode}): {p.stderr.strip()[-300:]}")


def _params(kind: str, key: str) -> dict:
    """Per-utterance settings drawn from a seed made of the utterance and the kind: the same every build."""
    rng = np.random.default_rng(zlib.crc32(f"{kind}:{key}".encode()))
    if kind == "telephone":
        return {"gain_db": round(float(rng.uniform(-6, 0)), 1)}
    if kind == "reverb":
        return {"reverberance": int(rng.integers(20, 80)), "room_scale": int(rng.integers(30, 100)),
                "pre_delay_ms": int(rng.integers(0, 30)), "wet_db": round(float(rng.uniform(-4, 0)), 1)}
    if kind == "codec":
        return {"kbps": int(rng.choice([8, 12, 16]))}
    if kind == "mic":
        return {"bass_db": round(float(rng.uniform(-10, 6)), 1), "treble_db": round(float(rng.uniform(-8, 6)), 1),
                "highpass_hz": int(rng.integers(60, 300)), "gain_db": round(float(rng.uniform(-18, 4)), 1)}
    raise ChannelError(f"no channel kind {kind!r}; known: {', '.join(KINDS)}")


def apply_channel(src: str | Path, dst: str | Path, kind: str, key: str) -> dict:
    """Write ``src`` (a 16 kHz wav) through channel ``kind`` to ``dst`` (16 kHz mono wav); returns the settings."""
    src, dst = Path(src), Path(dst)
    p = _params(kind, key)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.stem}.{os.getpid()}.tmp")     # DDP ranks may render the same file side by side
    norm = ["gain", "-n", "-1"]          # nothing clips after a boost; the level change comes after, down only
    if kind == "telephone":
        mid = tmp.with_suffix(".ul.wav")
        _run(["sox", str(src), "-r", "8000", "-e", "u-law", str(mid), "sinc", "300-3400", "gain", str(p["gain_db"])])
        _run(["sox", str(mid), "-r", "16000", "-e", "signed-integer", "-b", "16", str(tmp) + ".wav"])
        mid.unlink()
    elif kind == "reverb":
        _run(["sox", str(src), "-b", "16", str(tmp) + ".wav", "reverb", str(p["reverberance"]), "50",
              str(p["room_scale"]), "100", str(p["pre_delay_ms"]), str(p["wet_db"]), *norm])
    elif kind == "codec":
        mid = tmp.with_suffix(".opus")
        _run(["ffmpeg", "-v", "error", "-y", "-i", str(src), "-c:a", "libopus", "-b:a", f"{p['kbps']}k", str(mid)])
        _run(["ffmpeg", "-v", "error", "-y", "-i", str(mid), "-ar", "16000", "-ac", "1", "-c:a", "pcm_s16le",
              str(tmp) + ".wav"])
        mid.unlink()
    elif kind == "mic":
        _run(["sox", str(src), "-b", "16", str(tmp) + ".wav", "highpass", str(p["highpass_hz"]), "bass",
              str(p["bass_db"]), "treble", str(p["treble_db"]), *norm, "gain", str(min(0.0, p["gain_db"]))])
    else:
        _params(kind, key)    # raises the typed error
    Path(str(tmp) + ".wav").replace(dst)
    return p


def channel_variants(entries: list[dict], fraction: float, cache: Path, kinds=KINDS, seed: int = 0) -> list[dict]:
    """New entries: a ``fraction`` of ``entries`` (chosen by a hash of id and seed) each through one channel
    kind (also by hash), written once under ``cache/<kind>/``. Text, speech bounds and duration are kept;
    the entry records its ``channel`` and settings."""
    if not 0 <= fraction <= 1:
        raise ValueError(f"channel fraction must be in [0, 1], not {fraction}")
    for k in kinds:
        _params(k, "check")
    out = []
    for e in entries:
        h = zlib.crc32(f"{seed}:{e['id']}".encode())
        if (h % 10_000) / 10_000 >= fraction:
            continue
        kind = kinds[(h // 10_000) % len(kinds)]
        dst = Path(cache) / kind / f"{e['id']}.wav"
        side = dst.with_suffix(".json")
        if dst.is_file() and side.is_file():
            settings = json.loads(side.read_text())
        else:
            settings = apply_channel(e["audio_filepath"], dst, kind, e["id"])
            from ..files import write_text_atomic
            write_text_atomic(side, json.dumps(settings))
        out.append({**e, "audio_filepath": str(dst), "id": f"{e['id']}~{kind}", "channel": kind,
                    "channel_settings": settings})
    return out
