"""Audio input: one loader for files and arrays, with typed errors that say what was wrong.

Every room of the workbench takes audio through :func:`load_audio`, so a bad file fails here, once,
with a message naming the file and the problem, instead of as a shape error deep inside a model.
The result is always float32 mono in [-1, 1] at the requested (model) rate.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Union

import numpy as np

MODEL_SAMPLE_RATE = 16_000          # the rate every model of the workbench is trained at
DEFAULT_MAX_DURATION_S = 3600.0     # longer inputs are almost always a mistake (a whole recording session)
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1_000, 768_000

AudioSource = Union[str, os.PathLike, np.ndarray, "torch.Tensor"]  # noqa: F821


class AudioError(ValueError):
    """Base class: the input could not be turned into model audio."""


class AudioFileNotFoundError(AudioError, FileNotFoundError):
    """The path does not exist."""


class AudioUnreadableError(AudioError, OSError):
    """The path exists but cannot be read (permissions, a directory, an I/O error)."""


class NotAudioError(AudioError):
    """The file is readable but no audio decoder understands it."""


class EmptyAudioError(AudioError):
    """Zero samples."""


class NonFiniteAudioError(AudioError):
    """NaN or infinite samples (usually a bug upstream: a division by zero, an overflowed gain)."""


class SampleRateError(AudioError):
    """A sample rate that is missing, not a positive integer, or outside any real device's range."""


class AudioTooLongError(AudioError):
    """Longer than the configured limit; checked from the header, before decoding the whole file."""


def _check_rate(sr, what: str) -> int:
    if sr is None:
        raise SampleRateError(f"{what}: a sample rate is required (pass sample_rate=...)")
    if isinstance(sr, float) and sr.is_integer():
        sr = int(sr)
    if not isinstance(sr, (int, np.integer)) or isinstance(sr, bool):
        raise SampleRateError(f"{what}: sample rate must be an integer number of Hz, got {sr!r}")
    if not MIN_SAMPLE_RATE <= sr <= MAX_SAMPLE_RATE:
        raise SampleRateError(
            f"{what}: impossible sample rate {sr} Hz (expected {MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE})")
    return int(sr)


def _to_float32(x: np.ndarray, what: str) -> np.ndarray:
    """Integer PCM to [-1, 1] floats; floats kept as they are (only cast)."""
    if x.dtype.kind == "f":
        return x.astype(np.float32, copy=False)
    if x.dtype.kind == "i":
        return (x.astype(np.float32) / float(2 ** (8 * x.dtype.itemsize - 1)))
    if x.dtype.kind == "u":
        half = float(2 ** (8 * x.dtype.itemsize - 1))
        return (x.astype(np.float32) - half) / half
    if x.dtype.kind == "b":
        raise AudioError(f"{what}: boolean array is not audio")
    raise AudioError(f"{what}: unsupported sample dtype {x.dtype}")


def _to_mono(x: np.ndarray, what: str) -> np.ndarray:
    """Average channels. 2-D input is (samples, channels) as soundfile gives it, or (channels, samples)
    as torchaudio gives it: the short axis (at most 16 long) is taken as channels."""
    if x.ndim == 1:
        return x
    if x.ndim != 2:
        raise AudioError(f"{what}: expected 1-D or 2-D audio, got shape {x.shape}")
    ch_axis = 1 if x.shape[1] <= x.shape[0] else 0
    if x.shape[ch_axis] > 16:
        raise AudioError(f"{what}: cannot tell channels from samples in shape {x.shape}")
    return x.mean(axis=ch_axis)


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """High-quality resampling (soxr, the resampler librosa and lhotse use)."""
    if sr_in == sr_out:
        return x
    import soxr
    return soxr.resample(x, sr_in, sr_out, quality="HQ").astype(np.float32, copy=False)


def audio_info(path: Union[str, os.PathLike]) -> tuple[int, int, int]:
    """(sample_rate, frames, channels) from the header, with the same typed errors as load_audio."""
    import soundfile as sf
    p = Path(path)
    _check_path(p)
    try:
        info = sf.info(str(p))
        return int(info.samplerate), int(info.frames), int(info.channels)
    except sf.LibsndfileError:
        pass
    decoder = _ffmpeg_decoder(p)
    meta = decoder.metadata
    frames = int(round((meta.duration_seconds_from_header or 0.0) * meta.sample_rate))
    return int(meta.sample_rate), frames, int(meta.num_channels)


def _check_path(p: Path) -> None:
    if not p.exists():
        raise AudioFileNotFoundError(f"audio file not found: {p}")
    if p.is_dir():
        raise AudioUnreadableError(f"{p} is a directory, not an audio file")
    if not os.access(p, os.R_OK):
        raise AudioUnreadableError(f"audio file is not readable (permissions): {p}")


def _ffmpeg_decoder(p: Path):
    """Fallback for formats libsndfile does not read (m4a, aac, webm...): torchcodec over FFmpeg."""
    try:
        from torchcodec.decoders import AudioDecoder
        return AudioDecoder(str(p))
    except ImportError:
        raise NotAudioError(f"{p}: not a format libsndfile reads, and torchcodec/FFmpeg is unavailable")
    except Exception as e:  # torchcodec raises RuntimeError/ValueError for non-audio input
        raise NotAudioError(f"{p}: not an audio file ({type(e).__name__}: {str(e).splitlines()[0][:200]})") from None


def _read_file(p: Path, max_duration_s: float) -> tuple[np.ndarray, int]:
    import soundfile as sf
    _check_path(p)
    sr, frames, _ = audio_info(p)
    _check_rate(sr, str(p))
    if frames / sr > max_duration_s:
        raise AudioTooLongError(
            f"{p}: {frames / sr:.1f} s is longer than the limit of {max_duration_s:.0f} s (max_duration_s=...)")
    try:
        x, sr = sf.read(str(p), dtype="float32", always_2d=False)
        return x, int(sr)
    except sf.LibsndfileError:
        pass
    except OSError as e:
        raise AudioUnreadableError(f"cannot read {p}: {e}") from e
    samples = _ffmpeg_decoder(p).get_all_samples()
    return samples.data.numpy().T, int(samples.sample_rate)


def load_audio(source: AudioSource, sample_rate: int | None = None, *, target_rate: int = MODEL_SAMPLE_RATE,
               max_duration_s: float = DEFAULT_MAX_DURATION_S) -> np.ndarray:
    """Load a path or an array as float32 mono at ``target_rate``.

    ``sample_rate`` is the rate of an array ``source`` (required for arrays, ignored for files: the
    header is the truth). Raises a subclass of :class:`AudioError` naming the problem.
    """
    if isinstance(source, (str, os.PathLike)):
        what = str(source)
        x, sr = _read_file(Path(source), max_duration_s)
    else:
        what = f"array{tuple(getattr(source, 'shape', ()))}"
        if hasattr(source, "detach"):  # torch.Tensor, without importing torch here
            source = source.detach().cpu().numpy()
        if not isinstance(source, np.ndarray):
            raise AudioError(f"expected a path, numpy array or torch tensor, got {type(source).__name__}")
        sr = _check_rate(sample_rate, what)
        x = source
        n = x.shape[0] if x.ndim == 1 else max(x.shape) if x.ndim == 2 else 0
        if n / sr > max_duration_s:
            raise AudioTooLongError(
                f"{what}: {n / sr:.1f} s is longer than the limit of {max_duration_s:.0f} s (max_duration_s=...)")
    target_rate = _check_rate(target_rate, "target_rate")
    x = _to_mono(_to_float32(np.asarray(x), what), what)
    if x.size == 0:
        raise EmptyAudioError(f"{what}: audio is empty (0 samples)")
    if not np.isfinite(x).all():
        bad = int((~np.isfinite(x)).sum())
        raise NonFiniteAudioError(f"{what}: {bad} of {x.size} samples are NaN or infinite")
    return np.ascontiguousarray(resample(x, sr, target_rate), dtype=np.float32)


def save_wav(path: Union[str, os.PathLike], x: np.ndarray, sample_rate: int = MODEL_SAMPLE_RATE) -> None:
    """16-bit PCM wav, written to a temporary name and moved into place (never a half-written file)."""
    import soundfile as sf
    p = Path(path)
    tmp = p.with_name(f".{p.name}.tmp")
    sf.write(str(tmp), np.clip(x, -1.0, 1.0), sample_rate, subtype="PCM_16", format="WAV")
    os.replace(tmp, p)


def load_silero_vad():
    """silero-vad's bundled model (no download). Importing silero_vad calls ``torch.set_num_threads(1)`` for
    the whole process, which would silently halve every later model's CPU throughput on two cores (and skew
    every benchmark run after it); the caller's thread count is put back."""
    import torch
    threads = torch.get_num_threads()
    from silero_vad import load_silero_vad as _load
    model = _load()
    torch.set_num_threads(threads)
    return model


F0_FRAME_S = 0.010                   # one F0 value every 10 ms (WORLD's frame period)
F0_FLOOR, F0_CEIL = 60.0, 500.0      # the F0 search range, Hz


def f0_track(audio: np.ndarray, sr: int = MODEL_SAMPLE_RATE) -> np.ndarray:
    """F0 in Hz every 10 ms, 0 where unvoiced (WORLD's DIO + StoneMask): one analysis for every system a
    judge compares, for the codec's parameters and for the plots."""
    import pyworld
    x = np.ascontiguousarray(audio, dtype=np.float64)
    f0, t = pyworld.dio(x, sr, f0_floor=F0_FLOOR, f0_ceil=F0_CEIL, frame_period=F0_FRAME_S * 1000)
    return pyworld.stonemask(x, f0, t, sr)


def extend_after_speech(audio: np.ndarray, speech_end: float, seconds: float = 2.0) -> np.ndarray:
    """The recording continued until ``seconds`` after the end of speech, as a live microphone would: the
    background after the speech (noise, babble, silence) looped. Corpus files stop 0.3-1.5 s after the speech,
    which would otherwise end every slow end-pointer by the end of the file, not by its own decision."""
    sr = MODEL_SAMPLE_RATE
    want = int((speech_end + seconds) * sr)
    if len(audio) >= want:
        return audio
    tail = audio[min(len(audio), int(speech_end * sr) + sr // 10):]
    if len(tail) < sr // 10:
        tail = np.zeros(sr // 10, np.float32)
    reps = int(np.ceil((want - len(audio)) / len(tail)))
    return np.concatenate([audio, np.tile(tail, reps)[:want - len(audio)]]).astype(np.float32)
