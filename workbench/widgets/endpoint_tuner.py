"""``EndpointTuner``: sliders for the pause length T, the EOU threshold theta and the arbitrator threshold.
Every move re-scores the cached split (no model runs: the signals were computed once) and redraws the
trade-off curves with the current operating points, their EP50/EP90/cut-off numbers, and one utterance's
timeline. ``add_recording`` puts a fresh microphone recording among the utterances.
"""
from __future__ import annotations

import time

import numpy as np

from ..endpoint.endpointers import EouEndpointer, PauseEndpointer, TwoPassEndpointer, score
from ..endpoint.metrics import summarize


class EndpointTuner:
    def __init__(self, signals: list, arbitrator=None, audios: list | None = None, curves: dict | None = None,
                 first_pass_ms: float = 250.0, max_wait_ms: float = 1500.0,
                 pause_ms: float = 500.0, theta: float = 0.5, arb_threshold: float = 0.5):
        from ..endpoint.arbitrator import ArbitratorProbs
        from ..endpoint.evaluation import curves as make_curves
        if not signals:
            raise ValueError("EndpointTuner needs at least one utterance's signals")
        self.signals, self.audios = list(signals), list(audios) if audios is not None else [None] * len(signals)
        self.probs = ArbitratorProbs(arbitrator) if arbitrator is not None else None
        self.first_pass_ms, self.max_wait_ms = first_pass_ms, max_wait_ms
        self.values = {"pause_ms": pause_ms, "theta": theta, "arb_threshold": arb_threshold}
        self.curves = curves if curves is not None else make_curves(self.signals, arbitrator, first_pass_ms=(first_pass_ms,),
                                                                    max_wait_ms=max_wait_ms)
        self.utterance = 0
        self.last_rescore_s = None
        self._ui = None

    # -- scoring (no widgets needed: the tests and papermill use it directly) --------------------------
    def endpointers(self) -> dict:
        v = self.values
        out = {"pause": PauseEndpointer(v["pause_ms"])}
        if any(len(s.eou_prob) for s in self.signals):
            out["eou"] = EouEndpointer(v["theta"])
        if self.probs is not None:
            out["two-pass"] = TwoPassEndpointer(PauseEndpointer(self.first_pass_ms), self.probs, v["arb_threshold"],
                                                self.max_wait_ms)
        return out

    def rescore(self, **values) -> dict:
        """Set any of pause_ms / theta / arb_threshold and return each end-pointer's summary."""
        unknown = set(values) - set(self.values)
        if unknown:
            raise ValueError(f"unknown setting(s) {sorted(unknown)}; use {sorted(self.values)}")
        self.values.update(values)
        t0 = time.perf_counter()
        out = {name: summarize(score(ep, self.signals)) for name, ep in self.endpointers().items()}
        self.last_rescore_s = time.perf_counter() - t0
        self.current = out
        return out

    def add_recording(self, audio: np.ndarray, recognizer, text: str = "(recording)", true_end: float | None = None):
        """A fresh recording (16 kHz) joins the utterances; without ``true_end`` the last VAD speech window's
        end stands in for it."""
        from ..endpoint.signals import compute_signals, vad_windows
        if true_end is None:
            probs, hop = vad_windows(audio)
            speech = np.flatnonzero(probs >= 0.5)
            true_end = float((speech[-1] + 1) * hop) if len(speech) else len(audio) / 16000
        s = compute_signals(recognizer, [{"id": text, "text": text, "speech_end": true_end}], [audio])[0]
        self.signals.append(s)
        self.audios.append(audio)
        self.utterance = len(self.signals) - 1
        if self._ui is not None:
            self._ui["utt"].options = self._options()
            self._ui["utt"].value = self.utterance
        return s

    # -- the widget ------------------------------------------------------------------------------------
    def _options(self):
        return [(f"{i}: {s.text[:40]}" + (" [pause]" if s.pauses else "") + (" [trunc]" if s.truncated else ""), i)
                for i, s in enumerate(self.signals)]

    def widget(self):
        import ipywidgets as w
        style = {"description_width": "150px"}
        wide = w.Layout(width="460px")
        ui = {"pause_ms": w.FloatSlider(value=self.values["pause_ms"], min=50, max=1500, step=50,
                                        description="pause T (ms)", style=style, layout=wide, continuous_update=False),
              "theta": w.FloatSlider(value=self.values["theta"], min=0.01, max=0.99, step=0.01,
                                     description="EOU threshold θ", style=style, layout=wide, continuous_update=False),
              "arb_threshold": w.FloatSlider(value=self.values["arb_threshold"], min=0.05, max=0.95, step=0.05,
                                             description="arbitrator threshold", style=style, layout=wide, continuous_update=False),
              "utt": w.Dropdown(options=self._options(), value=self.utterance, description="utterance", style=style),
              "stats": w.HTML(), "plot": w.Output()}
        self._ui = ui
        for k in ("pause_ms", "theta", "arb_threshold", "utt"):
            ui[k].observe(lambda _change: self._redraw(), names="value")
        self._redraw()
        return w.VBox([w.HBox([w.VBox([ui["pause_ms"], ui["theta"], ui["arb_threshold"], ui["utt"]]), ui["stats"]]),
                       ui["plot"]])

    def _redraw(self):
        import matplotlib.pyplot as plt
        from ..endpoint.evaluation import plot_curves
        from ..plots import plot_endpoint_timeline
        ui = self._ui
        res = self.rescore(pause_ms=ui["pause_ms"].value, theta=ui["theta"].value, arb_threshold=ui["arb_threshold"].value)
        self.utterance = ui["utt"].value
        rows = "".join(f"<tr><td>{n}</td><td>{r['EP50_ms']:.0f}</td><td>{r['EP90_ms']:.0f}</td>"
                       f"<td>{100 * r['cutoff_rate']:.1f} %</td><td>{100 * r['wer_cost']:.1f} %</td></tr>"
                       for n, r in res.items())
        ui["stats"].value = (f"<table><tr><th>end-pointer</th><th>EP50 ms</th><th>EP90 ms</th><th>cut-off</th>"
                             f"<th>WER cost</th></tr>{rows}</table><small>re-scored {len(self.signals)} utterances "
                             f"in {1000 * self.last_rescore_s:.0f} ms</small>")
        with ui["plot"]:
            ui["plot"].clear_output(wait=True)
            fig, ax = plt.subplots(1, 2, figsize=(15, 3.8), gridspec_kw={"width_ratios": [1, 1.6]})
            plot_curves(self.curves, ax=ax[0], title="trade-off; x = current settings")
            for n, r in res.items():
                ax[0].plot(r["EP90_ms"], 100 * r["cutoff_rate"], "kx", ms=10, mew=2)
                ax[0].annotate(n, (r["EP90_ms"], 100 * r["cutoff_rate"]), fontsize=8, xytext=(4, 4),
                               textcoords="offset points")
            s = self.signals[self.utterance]
            decisions = {n: ep.endpoint(s) for n, ep in self.endpointers().items()}
            plot_endpoint_timeline(s, self.audios[self.utterance], decisions,
                                   self.probs(s) if self.probs is not None else None, ax=ax[1])
            plt.tight_layout()
            plt.show()

    def _ipython_display_(self):
        from IPython.display import display
        display(self.widget())
