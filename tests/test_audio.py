"""workbench.audio: every bad input gets its own typed error; good input arrives as 16 kHz mono float32."""
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import patience
import soundfile as sf

from workbench.audio import (AudioError, AudioFileNotFoundError, AudioTooLongError, AudioUnreadableError,
                             EmptyAudioError, NonFiniteAudioError, NotAudioError, SampleRateError, audio_info,
                             load_audio, save_wav)


def tone(sr, seconds=0.5, f=440.0):
    t = np.arange(int(sr * seconds)) / sr
    return (0.5 * np.sin(2 * np.pi * f * t)).astype(np.float32)


def test_resamples_file_and_mixes_down(tmp_path):
    x = tone(44100)
    stereo = np.stack([x, 0.5 * x], axis=1)
    sf.write(tmp_path / "s.wav", stereo, 44100, subtype="PCM_16")
    y = load_audio(tmp_path / "s.wav")
    assert y.dtype == np.float32 and y.ndim == 1
    assert abs(len(y) - 8000) <= 1
    # the mono mix of (x, 0.5x) is 0.75x: peak 0.375, and the 440 Hz tone survives resampling
    assert abs(np.abs(y[100:-100]).max() - 0.375) < 0.01
    spec = np.abs(np.fft.rfft(y))
    assert abs(np.argmax(spec) * 16000 / len(y) - 440) < 5


@pytest.mark.parametrize("dtype,scale", [(np.int16, 32767), (np.int32, 2 ** 31 - 1), (np.float64, 1.0)])
def test_array_dtypes_are_scaled(dtype, scale):
    x = (tone(16000) * scale).astype(dtype)
    y = load_audio(x, 16000)
    assert y.dtype == np.float32
    assert abs(np.abs(y).max() - 0.5) < 1e-3


def test_uint8_and_channels_first_tensor():
    import torch
    x = ((tone(8000) + 1) * 127.5).astype(np.uint8)
    assert abs(np.abs(load_audio(x, 8000)).max() - 0.5) < 0.02
    t = torch.from_numpy(np.stack([tone(16000), tone(16000)]))   # (channels, samples) as torchaudio gives
    assert load_audio(t, 16000).shape == (8000,)


def test_missing_file(tmp_path):
    with pytest.raises(AudioFileNotFoundError, match="not found"):
        load_audio(tmp_path / "nope.wav")


def test_directory_is_unreadable(tmp_path):
    with pytest.raises(AudioUnreadableError, match="directory"):
        load_audio(tmp_path)


def test_permission_denied(tmp_path):
    """Root reads any file (CAP_DAC_OVERRIDE), so as root (CI runs as root) the same check runs in a child
    process whose capability bounding set lacks the two capabilities that bypass file permissions: never
    skipped."""
    import subprocess
    import sys
    import tempfile
    d = Path(tempfile.mkdtemp(prefix="wb-perm-"))
    d.chmod(0o755)
    p = d / "x.wav"
    sf.write(p, tone(16000), 16000)
    p.chmod(0)
    code = ("from workbench.audio import load_audio, AudioUnreadableError\n"
            f"try:\n    load_audio({str(p)!r})\nexcept AudioUnreadableError as e:\n    print('TYPED', e)\n")
    if os.geteuid() != 0:
        with pytest.raises(AudioUnreadableError, match="permissions"):
            load_audio(p)
        return
    def drop():
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        for cap in (1, 2):                    # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
            if libc.prctl(24, cap, 0, 0, 0) != 0:      # PR_CAPBSET_DROP: gone after exec
                raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=patience(120), preexec_fn=drop,
                         cwd=d, env={**os.environ, "HOME": str(d)})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith("TYPED") and "permissions" in out.stdout, out.stdout


def test_not_audio(tmp_path):
    p = tmp_path / "notes.wav"
    p.write_text("this is a shopping list, not a recording\n" * 20)
    with pytest.raises(NotAudioError, match="notes.wav"):
        load_audio(p)


def test_empty_file_and_array(tmp_path):
    p = tmp_path / "empty.wav"
    sf.write(p, np.zeros(0, np.float32), 16000)
    with pytest.raises(EmptyAudioError):
        load_audio(p)
    with pytest.raises(EmptyAudioError):
        load_audio(np.zeros(0, np.float32), 16000)


def test_nan_and_inf(tmp_path):
    x = tone(16000)
    x[10] = np.nan
    with pytest.raises(NonFiniteAudioError, match="1 of"):
        load_audio(x, 16000)
    p = tmp_path / "inf.wav"
    x[10] = np.inf
    sf.write(p, x, 16000, subtype="FLOAT")
    with pytest.raises(NonFiniteAudioError):
        load_audio(p)


@pytest.mark.parametrize("sr", [0, -16000, 10_000_000, 16000.5, None, "16k", True])
def test_impossible_sample_rate(sr):
    with pytest.raises(SampleRateError):
        load_audio(tone(16000), sr)


def test_too_long_checked_from_header(tmp_path):
    p = tmp_path / "long.wav"
    sf.write(p, tone(16000, seconds=3.0), 16000)
    with pytest.raises(AudioTooLongError, match="limit of 2 s"):
        load_audio(p, max_duration_s=2)
    with pytest.raises(AudioTooLongError):
        load_audio(tone(16000, seconds=3.0), 16000, max_duration_s=2)
    assert len(load_audio(p, max_duration_s=4)) == 48000


def test_default_limit_is_one_hour():
    import inspect
    assert inspect.signature(load_audio).parameters["max_duration_s"].default == 3600


def test_all_errors_are_audio_errors():
    for cls in (AudioFileNotFoundError, AudioUnreadableError, NotAudioError, EmptyAudioError,
                NonFiniteAudioError, SampleRateError, AudioTooLongError):
        assert issubclass(cls, AudioError) and issubclass(cls, ValueError)


def test_ffmpeg_formats_fall_back_to_torchcodec(tmp_path):
    import shutil
    import subprocess
    if not shutil.which("ffmpeg"):
        pytest.skip("ffmpeg not installed")
    wav, m4a = tmp_path / "a.wav", tmp_path / "a.m4a"
    sf.write(wav, tone(22050, seconds=1.0), 22050)
    subprocess.run(["ffmpeg", "-loglevel", "error", "-i", str(wav), str(m4a)], check=True)
    y = load_audio(m4a)
    assert abs(len(y) - 16000) < 1200   # AAC adds priming samples
    assert audio_info(m4a)[0] == 22050


def test_save_wav_is_atomic_and_roundtrips(tmp_path):
    p = tmp_path / "out.wav"
    save_wav(p, tone(16000))
    assert not list(tmp_path.glob(".*tmp"))
    assert np.allclose(load_audio(p), tone(16000), atol=1e-4)


def test_loading_silero_keeps_the_callers_thread_count():
    """silero_vad sets torch to one thread at import; through the workbench the caller's count stays."""
    import subprocess
    import sys
    def threads_after(load: str) -> str:
        code = f"import torch; torch.set_num_threads(2)\n{load}\nprint(torch.get_num_threads())\n"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=patience(120))
        assert out.returncode == 0, out.stderr[-2000:]
        return out.stdout.split()[-1]
    assert threads_after("import silero_vad") == "1"                   # what the guard is for
    assert threads_after("from workbench.audio import load_silero_vad; load_silero_vad()") == "2"
