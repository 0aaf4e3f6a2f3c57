"""One accounting for both speech-to-speech systems (``score``): Whisper's WER against the reference answer, task
success, prosody following (``arousal``), DNSMOS, voice similarity, first-audio latency. ``bench s2s``, notebook
11 and exercise 11 read it.
"""
from __future__ import annotations


import numpy as np

from ..audio import MODEL_SAMPLE_RATE as SR
from .model import SpeechTextLM
from .pipeline import answer



# --- one accounting ----------------------------------------------------------------------------------------------
def arousal(audios: list[np.ndarray], norm: tuple | None = None) -> tuple[np.ndarray, tuple]:
    """An arousal index per recording: the mean z-score of median F0, F0 range (semitones) and energy (dB), the
    three cues that rise with arousal. ``norm`` (means, stds) is taken from the recordings themselves unless
    given. Returns (index, norm)."""
    from ..tts.prosody import measure
    if not len(audios):
        return np.zeros(0), norm if norm is not None else (np.zeros(3), np.ones(3))
    m = []
    for a in audios:
        try:
            d = measure(a)
            m.append([d["f0_st"], d["range_st"], d["energy_db"]])
        except ValueError:                                     # under 50 ms: no prosody to speak of
            m.append([np.nan] * 3)
    m = np.array(m, float)
    if norm is None:
        norm = (np.nanmean(m, 0), np.nanstd(m, 0) + 1e-6)
    z = (m - norm[0]) / norm[1]
    return np.nan_to_num(np.nanmean(z, 1), nan=0.0), norm


def prosody_following(req: np.ndarray, resp: np.ndarray, moods: list[str], threshold: float) -> dict:
    """Spearman ρ between request and response arousal (paired bootstrap interval), and the share of excited
    requests whose answer is over ``threshold`` (the midpoint between the reference answers to excited and to
    neutral requests)."""
    from scipy.stats import spearmanr

    from ..stats import paired_ci, rate_ci
    rho = paired_ci((req, resp), lambda x, y: float(spearmanr(x, y).statistic) if np.std(y) > 0 else 0.0)
    exc = [r > threshold for r, m in zip(resp, moods) if m == "excited"]
    return {"spearman": rho, "excited_answered_excitedly": rate_ci(sum(exc), len(exc))}


def score(outs: list[dict], rows: list[dict], req_arousal: np.ndarray, norm: tuple, threshold: float,
          target: np.ndarray, latency: bool = True) -> dict:
    """One system's answers (``outs``, one per row) through the whole accounting."""
    from .. import judges
    from ..asr.scoring import utterance_errors
    from ..stats import rate_ci, stat_ci, wer_ci
    from .judge import task_success
    silent = np.zeros(SR // 10, np.float32)
    audios = [o["audio"] if len(o["audio"]) >= SR // 10 else silent for o in outs]
    heard = judges.whisper_transcribe(audios)
    judged = [task_success(h, r) for h, r in zip(heard, rows)]
    dlg = [i for i, r in enumerate(rows) if r["task"] == "dialogue"]
    tr = [i for i, r in enumerate(rows) if r["task"] != "dialogue"]
    # Whisper tiny.en judges English: the WER is over the dialogue turns; translations are judged by task success
    e, w = utterance_errors([rows[i]["response_text"] for i in dlg], [heard[i] for i in dlg])
    resp_arousal, _ = arousal([audios[i] for i in dlg], norm)
    res = {"n": len(rows), "wer_whisper": {k: v for k, v in wer_ci(e, w).items()},
           "task_success": rate_ci(sum(judged[i]["success"] for i in dlg), len(dlg)),
           "values_said": rate_ci(sum(judged[i]["values"] for i in dlg), len(dlg)),
           "translation_success": rate_ci(sum(judged[i]["success"] for i in tr), len(tr)),
           "prosody": prosody_following(req_arousal[dlg], resp_arousal, [rows[i]["arousal"] for i in dlg], threshold),
           "dnsmos": stat_ci([judges.dnsmos(a) for a in audios]),
           "speaker_similarity": stat_ci([float(np.dot(judges.speaker_embedding(a), target) / np.linalg.norm(target))
                                          for a in audios]),
           "fallbacks": rate_ci(sum(bool(o.get("fallback")) for o in outs), len(outs)),
           "truncated": rate_ci(sum(bool(o.get("truncated")) for o in outs), len(outs))}
    if latency:
        secs = [o["first_audio_s"] for o in outs]
        res["first_audio_s"] = {"p50": float(np.percentile(secs, 50)), "p95": float(np.percentile(secs, 95)),
                                "mean": stat_ci(secs)}
        if any("encode_s" in o for o in outs):
            res["encode_s_p50"] = float(np.median([o.get("encode_s", 0.0) for o in outs]))
    if outs and "heard" in outs[0]:                         # the cascade's own transcript of the request
        ea, wa = utterance_errors([r["text"] for r in rows], [o["heard"] for o in outs])
        res["request_asr_wer"] = wer_ci(ea, wa)
    if outs and "text" in outs[0]:
        inner = [task_success(outs[i]["text"], rows[i])["success"] for i in dlg]
        res["text_task_success"] = rate_ci(sum(inner), len(dlg))      # what it meant to say, before speech
    res["examples"] = [{"request": r["text"], "arousal": r["arousal"], "reference": r["response_tagged"],
                        "said": o.get("text", ""), "heard": h} for r, o, h in list(zip(rows, outs, heard))[:6]]
    return res


def evaluate(model: SpeechTextLM, tok, codec, rows: list[dict], max_frames: int = 150) -> dict:
    """The model's answers to coded requests (no audio needed), scored by Whisper and the task-success judge:
    the quick check the recipe and the tests use; ``run`` is the whole bench."""
    from ..asr.scoring import utterance_errors
    from ..judges import whisper_transcribe
    from ..stats import rate_ci, wer_ci
    from .judge import task_success
    outs = [answer(model, tok, codec, r, max_frames=max_frames) for r in rows]
    silent = np.zeros(1600, np.float32)            # an answer with no frames is heard as silence
    heard = whisper_transcribe([o["audio"] if len(o["audio"]) >= 1600 else silent for o in outs])
    e, w = utterance_errors([r["response_text"] for r in rows], heard)
    judged = [task_success(h, r) for h, r in zip(heard, rows)]
    inner = [task_success(o["text"], r)["success"] for o, r in zip(outs, rows)]
    n = len(rows)
    return {"n": n, "wer_whisper": wer_ci(e, w), "task_success": rate_ci(sum(j["success"] for j in judged), n),
            "values_said": rate_ci(sum(j["values"] for j in judged), n),
            "inner_text_success": rate_ci(sum(inner), n),
            "truncated": rate_ci(sum(o["truncated"] for o in outs), n),
            "seconds_p50": float(np.median([o["seconds"] for o in outs])),
            "examples": [{"request": r["text"], "reference": r["response_tagged"], "inner": o["text"], "heard": h}
                         for r, o, h in list(zip(rows, outs, heard))[:5]]}
