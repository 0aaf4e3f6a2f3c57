"""Figures shared by the notebooks: an utterance on its timeline, and corpus statistics.

The utterance timeline (waveform, spectrogram, words, pauses, true end of speech) is the picture every
room draws on top of: the end-pointers add their decisions, the recogniser its partial hypotheses.
"""
from __future__ import annotations

import numpy as np

from .audio import MODEL_SAMPLE_RATE


def plot_utterance(entry: dict, audio: np.ndarray, sample_rate: int = MODEL_SAMPLE_RATE, axes=None,
                   title: str | None = None):
    """Waveform and spectrogram with word spans, pauses and the true end of speech marked."""
    import matplotlib.pyplot as plt
    if axes is None:
        fig, axes = plt.subplots(2, 1, figsize=(12, 5), sharex=True, gridspec_kw={"height_ratios": [1, 1.4]})
    else:
        fig = axes[0].figure
    t = np.arange(len(audio)) / sample_rate
    ax_w, ax_s = axes
    ax_w.plot(t, audio, lw=0.5, color="0.3")
    ax_w.set_ylabel("amplitude")
    ax_s.specgram(audio, NFFT=400, Fs=sample_rate, noverlap=240, cmap="magma", vmin=-120)
    ax_s.set_ylabel("Hz")
    ax_s.set_xlabel("seconds")
    ymax = np.abs(audio).max() or 1.0
    for i, w in enumerate(entry.get("words", [])):
        color = "tab:orange" if w.get("filler") else ("tab:blue" if i % 2 == 0 else "tab:cyan")
        ax_w.axvspan(w["start"], w["end"], color=color, alpha=0.15)
        ax_w.text((w["start"] + w["end"]) / 2, ymax * (0.85 if i % 2 == 0 else 0.65), w["word"],
                  ha="center", fontsize=8)
        ax_s.axvline(w["start"], color="w", lw=0.5, alpha=0.6)
    for p in entry.get("pauses", []):
        ax_w.axvspan(p["start"], p["end"], color="tab:green", alpha=0.15)
        ax_w.text((p["start"] + p["end"]) / 2, -ymax * 0.85, f"{p['kind']} {1000 * (p['end'] - p['start']):.0f} ms",
                  ha="center", fontsize=7, color="tab:green")
    if "speech_end" in entry:
        for ax in axes:
            ax.axvline(entry["speech_end"], color="red", lw=1.5)
        ax_w.text(entry["speech_end"], ymax, " true end of speech", color="red", fontsize=8, va="top")
    noise = entry.get("noise")
    label = title or (f"{entry.get('id', '')}  \"{entry['text']}\"  speaker {entry.get('speaker', '?')}  "
                      f"{'noise ' + noise['type'] + ' ' + str(noise['snr_db']) + ' dB' if noise else 'clean'}"
                      f"{'  TRUNCATED' if entry.get('truncated') else ''}")
    ax_w.set_title(label, fontsize=9)
    fig.tight_layout()
    return fig


def plot_corpus_stats(df, pauses_s: list[float] | None = None):
    """Durations, pause lengths, utterances per speaker, noise conditions and domains."""
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(2, 3, figsize=(14, 7))
    ax = ax.ravel()
    for split, g in df.groupby("split"):
        ax[0].hist(g["duration"], bins=40, alpha=0.6, label=split, density=True)
    ax[0].set(title="utterance duration", xlabel="s", ylabel="density")
    ax[0].legend()
    if pauses_s:
        ax[1].hist(np.array(pauses_s) * 1000, bins=40, color="tab:green")
    ax[1].set(title="mid-sentence pause lengths", xlabel="ms", ylabel="count")
    per_spk = df.groupby(["split", "speaker"]).size()
    for split in per_spk.index.get_level_values(0).unique():
        ax[2].hist(per_spk[split].values, bins=20, alpha=0.6, label=f"{split} ({len(per_spk[split])} speakers)")
    ax[2].set(title="utterances per speaker", xlabel="utterances", ylabel="speakers")
    ax[2].legend(fontsize=8)
    cond = df.assign(cond=[n if n == "clean" else f"{n} {s:g} dB" for n, s in zip(df["noise"], df["snr_db"])])
    cond["cond"].value_counts().sort_index().plot.barh(ax=ax[3], color="tab:purple")
    ax[3].set(title="noise condition (SNR)", xlabel="utterances")
    df["domain"].value_counts().plot.barh(ax=ax[4], color="tab:blue")
    ax[4].set(title="domain", xlabel="utterances")
    kinds = {"no pause, complete": ((df.n_pauses == 0) & ~df.truncated).sum(),
             "with pauses": (df.n_pauses > 0).sum(), "truncated": df.truncated.sum(),
             "noisy": (df.noise != "clean").sum()}
    ax[5].bar(list(kinds), list(kinds.values()), color="tab:gray")
    ax[5].set(title="utterance kinds (overlapping)")
    ax[5].tick_params(axis="x", rotation=20)
    fig.tight_layout()
    return fig


def plot_streaming(entry: dict, audio: np.ndarray, events: list, frame_s: float, lookahead_s: float = 0.0,
                   sample_rate: int = MODEL_SAMPLE_RATE, max_labels: int = 12):
    """An utterance with what the streaming recogniser said, step by step: the spectrogram, P(<EOU>)
    per encoder frame, the partial hypothesis at each step (placed at the audio it had heard), the
    <EOU> emission and the true end of speech."""
    import matplotlib.pyplot as plt
    from .events import EndOfUtterance, Partial
    partials = [e for e in events if isinstance(e, Partial)]
    eou = [e for e in events if isinstance(e, EndOfUtterance)]
    fig, (ax_s, ax_p) = plt.subplots(2, 1, figsize=(12, 5.5), sharex=True, gridspec_kw={"height_ratios": [1.3, 1]})
    ax_s.specgram(audio, NFFT=400, Fs=sample_rate, noverlap=240, cmap="magma", vmin=-120)
    ax_s.set_ylabel("Hz")
    probs = np.concatenate([p.eou_prob for p in partials if p.eou_prob is not None]) if partials else np.zeros(0)
    t = (np.arange(len(probs)) + 1) * frame_s
    ax_p.plot(t, probs, color="tab:purple", label="P(<EOU>) per encoder frame (CTC head)")
    ax_p.set_ylim(-0.02, 1.02)
    ax_p.set_ylabel("P(<EOU>)")
    ax_p.set_xlabel("seconds of audio")
    shown, last = 0, None
    stride = max(1, len(partials) // max_labels)
    for i, p in enumerate(partials):
        if p.text != last and (i % stride == 0 or i == len(partials) - 1) and shown < max_labels:
            ax_s.annotate(p.text[-40:], (p.audio_end, 7600 - 520 * (shown % 12)), fontsize=7, color="w",
                          ha="right")
            shown += 1
            last = p.text
    for ax in (ax_s, ax_p):
        if "speech_end" in entry:
            ax.axvline(entry["speech_end"], color="red", lw=1.5)
        for e in eou:
            ax.axvline(e.time, color="tab:purple", ls="--", lw=1.5)
    ax_p.text(entry.get("speech_end", 0), 0.95, " true end of speech", color="red", fontsize=8, va="top")
    for e in eou:
        ax_p.text(e.time, 0.8, f" <EOU> emitted (+{e.time - entry.get('speech_end', e.time):.2f} s)",
                  color="tab:purple", fontsize=8)
    ax_p.legend(loc="upper left", fontsize=8)
    ax_s.set_title(f"\"{entry['text']}\"  lookahead {lookahead_s * 1000:.0f} ms", fontsize=9)
    fig.tight_layout()
    return fig


def plot_lookahead_decisions(entry: dict, audio: np.ndarray, decisions: list, frame_s: float, threshold: float,
                             sample_rate: int = MODEL_SAMPLE_RATE):
    """The dynamic-lookahead policy on one utterance: the spectrogram with each committed chunk coloured by
    the context it was run at, and the uncertainty of every probe against the policy's threshold."""
    import matplotlib.pyplot as plt
    contexts = sorted({d.context for d in decisions}, key=lambda c: c[1])
    colors = {c: plt.cm.viridis(i / max(1, len(contexts) - 1)) for i, c in enumerate(contexts)}
    fig, (ax_s, ax_u) = plt.subplots(2, 1, figsize=(12, 5), sharex=True, gridspec_kw={"height_ratios": [1.3, 1]})
    ax_s.specgram(audio, NFFT=400, Fs=sample_rate, noverlap=240, cmap="magma", vmin=-120)
    ax_s.set_ylabel("Hz")
    for d in decisions:
        a, b = d.start * frame_s, (d.start + d.frames) * frame_s
        ax_s.axvspan(a, b, ymin=0, ymax=0.06, color=colors[d.context])
        ax_u.axvspan(a, b, color=colors[d.context], alpha=0.25, lw=0)
        for ctx, u in d.probes:
            ax_u.plot([a], [u], "o", color="k", ms=3)
    for c in contexts:
        ax_u.plot([], [], "s", color=colors[c], alpha=0.6, label=f"chunk run at [{c[0]},{c[1]}]")
    ax_u.axhline(threshold, color="tab:red", ls="--", lw=1, label=f"threshold {threshold:g}")
    ax_u.plot([], [], "o", color="k", ms=3, label="probe uncertainty")
    if "speech_end" in entry:
        for ax in (ax_s, ax_u):
            ax.axvline(entry["speech_end"], color="red", lw=1.2)
    ax_u.set_ylabel("uncertainty")
    ax_u.set_xlabel("seconds of audio")
    ax_u.legend(fontsize=7, loc="upper right", ncol=2)
    ax_s.set_title(f"\"{entry['text']}\"", fontsize=9)
    fig.tight_layout()
    return fig


def plot_endpoint_timeline(sig, audio: np.ndarray | None, decisions: dict, arbitrator_probs: np.ndarray | None = None,
                           ax=None, sample_rate: int = MODEL_SAMPLE_RATE):
    """One utterance for the end-pointers: waveform, silero-vad speech probability, P(<EOU>) per encoder
    frame, the arbitrator's P(end) per recogniser step, the true end of speech and mid-sentence pauses,
    and each end-pointer's decision (``{name: time or None}``)."""
    import matplotlib.pyplot as plt
    if ax is None:
        _, ax = plt.subplots(figsize=(12, 3.6))
    if audio is not None and len(audio):
        t = np.arange(len(audio)) / sample_rate
        ax.plot(t, 0.5 + 0.45 * audio / (np.abs(audio).max() + 1e-9), color="0.75", lw=0.5)
    if len(sig.vad_prob):
        ax.step((np.arange(len(sig.vad_prob)) + 1) * sig.vad_hop, sig.vad_prob, where="post", color="tab:blue",
                lw=1, label="VAD P(speech)")
    if len(sig.eou_prob):
        ax.plot(sig.frame_available(), sig.eou_prob, ".-", color="tab:purple", lw=1, ms=3, label="P(<EOU>)")
    if arbitrator_probs is not None and len(arbitrator_probs):
        ax.plot(sig.step_time, arbitrator_probs, "-", color="tab:green", lw=1.5, label="arbitrator P(end)")
    for a, b, kind in sig.pauses:
        ax.axvspan(a, b, color="orange", alpha=0.15)
    ax.axvline(sig.true_end, color="red", lw=2, label="true end of speech")
    styles = ["--", "-.", ":", (0, (5, 1))]
    for k, (name, t_ep) in enumerate(decisions.items()):
        if t_ep is None:
            continue
        cut = t_ep < sig.true_end
        ax.axvline(t_ep, color="k", ls=styles[k % len(styles)], lw=1.3,
                   label=f"{name}: {'CUT OFF ' if cut else ''}{1000 * (t_ep - sig.true_end):+.0f} ms")
    ax.set_ylim(-0.02, 1.05)
    ax.set_xlim(0, sig.audio_end)
    ax.set_xlabel("seconds (orange: mid-sentence pauses)")
    ax.set_title(f"\"{sig.text}\"" + (" (truncated)" if sig.truncated else ""), fontsize=9)
    ax.legend(fontsize=7, loc="upper left", ncol=2)
    return ax


def plot_renderings(renders: dict, marks: dict | None = None, sample_rate: int = MODEL_SAMPLE_RATE):
    """One row per rendering of the same text: spectrogram with the F0 track (cyan) and frame energy (white, dB,
    right axis); ``marks`` maps a rendering's name to [(seconds, label)], e.g. where each stage direction acts."""
    import matplotlib.pyplot as plt
    from .audio import F0_FRAME_S as FRAME_S, f0_track
    fig, axes = plt.subplots(len(renders), 1, figsize=(11, 2.3 * len(renders)), squeeze=False)
    hop = int(FRAME_S * sample_rate)
    for ax, (name, a) in zip(axes[:, 0], renders.items()):
        a = np.asarray(a, np.float32)
        ax.specgram(a, NFFT=512, Fs=sample_rate, noverlap=384, cmap="magma", vmin=-120)
        ax.set_ylim(0, 8000)
        f0 = f0_track(a, sample_rate)
        t = np.arange(len(f0)) * FRAME_S
        ax.plot(t, np.where(f0 > 0, f0 * 10, np.nan), color="cyan", lw=1.2, label="F0 × 10 (Hz)")
        n = len(a) // hop
        db = 10 * np.log10((a[: n * hop].reshape(n, hop) ** 2).mean(1) + 1e-10)
        ax2 = ax.twinx()
        ax2.plot(np.arange(n) * FRAME_S, db, color="white", lw=0.8)
        ax2.set_ylim(-90, 0)
        ax2.set_ylabel("dB", fontsize=8)
        for s, label in (marks or {}).get(name, []):
            ax.axvline(s, color="lime", lw=1, ls="--")
            ax.text(s, 7600, label, color="lime", fontsize=8, va="top")
        ax.set_title(f"{name} ({len(a) / sample_rate:.2f} s)", fontsize=9)
    axes[-1, 0].set_xlabel("seconds")
    fig.tight_layout()
    return fig
