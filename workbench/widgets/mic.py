"""``MicCapture``: the browser's microphone, streamed into the kernel while the user speaks.

JupyterLab often runs on another machine than the user's microphone, so the capture happens in the browser:
``getUserMedia`` -> an ``AudioContext`` at 16 kHz (the browser resamples) -> an AudioWorklet that cuts 100 ms
blocks -> int16 PCM sent to the kernel as binary buffers of custom widget messages, in order, *while*
recording. In the kernel each block is one float32 array: callbacks get it as it arrives (the streaming
recogniser and an end-pointer, through ``connect``), and the whole recording is there as an array or a
wav afterwards. Permission denied, no input device or a page that is not a secure context: the widget
shows the reason and sends nothing.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import anywidget
import numpy as np
import traitlets

from ..audio import MODEL_SAMPLE_RATE, save_wav

_ESM = r"""
const WORKLET = `
class Blocks extends AudioWorkletProcessor {
  constructor(o) { super(); this.n = o.processorOptions.block; this.buf = new Float32Array(this.n); this.i = 0; }
  process(inputs) {
    const ch = inputs[0] && inputs[0][0];
    if (ch) for (let k = 0; k < ch.length; k++) {
      this.buf[this.i++] = ch[k];
      if (this.i === this.n) { this.port.postMessage(this.buf.slice(0)); this.i = 0; }
    }
    return true;
  }
}
registerProcessor('wb-blocks', Blocks);`;

function render({ model, el }) {
  el.classList.add("wb-mic");
  const button = document.createElement("button");
  const meter = document.createElement("div"); meter.className = "wb-meter";
  const bar = document.createElement("div"); bar.className = "wb-bar"; meter.appendChild(bar);
  const clock = document.createElement("span"); clock.className = "wb-clock"; clock.textContent = "0.0 s";
  const msg = document.createElement("div"); msg.className = "wb-msg";
  const text = document.createElement("div"); text.className = "wb-transcript";
  el.append(button, meter, clock, msg, text);
  let ctx = null, stream = null, node = null, t0 = 0, timer = null, seq = 0;
  const show = () => {
    button.textContent = model.get("recording") ? "■ Stop" : "● Record";
    msg.textContent = model.get("status");
    text.textContent = model.get("transcript");
    text.classList.toggle("wb-ended", model.get("endpoint") >= 0);
  };
  model.on("change:recording", show); model.on("change:status", show);
  model.on("change:transcript", show); model.on("change:endpoint", show);
  // timing log for the browser test: when each block left, when each transcript change was shown
  const log = (window.__wb_mic = window.__wb_mic || { sends: {}, shown: [] });
  model.on("change:transcript", () => log.shown.push({ seq: model.get("transcript_seq"), t: performance.timeOrigin + performance.now(),
                                                       text: model.get("transcript") }));
  const fail = (why) => { model.set("status", why); model.set("recording", false); model.save_changes(); };
  async function start() {
    if (!window.isSecureContext) return fail("The microphone needs a secure page: open JupyterLab over https or on localhost.");
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) return fail("This browser gives no microphone access (no mediaDevices.getUserMedia).");
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1, echoCancellation: false,
                                                                    noiseSuppression: false, autoGainControl: false } });
    } catch (e) {
      if (e.name === "NotAllowedError" || e.name === "SecurityError") return fail("Microphone permission denied: allow it for this page and press Record again.");
      if (e.name === "NotFoundError" || e.name === "OverconstrainedError") return fail("No microphone found: connect an input device.");
      return fail("Microphone error: " + e.name + ": " + e.message);
    }
    const rate = model.get("sample_rate");
    ctx = new AudioContext({ sampleRate: rate });
    const url = URL.createObjectURL(new Blob([WORKLET], { type: "application/javascript" }));
    await ctx.audioWorklet.addModule(url);
    const src = ctx.createMediaStreamSource(stream);
    node = new AudioWorkletNode(ctx, "wb-blocks", { processorOptions: { block: Math.round(rate * model.get("block_ms") / 1000) } });
    seq = 0;
    node.port.onmessage = (ev) => {
      const f = ev.data; let peak = 0;
      const pcm = new Int16Array(f.length);
      for (let k = 0; k < f.length; k++) { const v = Math.max(-1, Math.min(1, f[k])); pcm[k] = v * 32767; peak = Math.max(peak, Math.abs(v)); }
      bar.style.width = Math.min(100, 100 * peak) + "%";
      log.sends[seq] = performance.timeOrigin + performance.now();
      model.send({ type: "chunk", seq: seq++, rate: ctx.sampleRate, t: (performance.now() - t0) / 1000 }, undefined, [pcm.buffer]);
    };
    src.connect(node);
    t0 = performance.now();
    timer = setInterval(() => { clock.textContent = ((performance.now() - t0) / 1000).toFixed(1) + " s"; }, 100);
    model.set("status", ""); model.set("recording", true); model.save_changes();
    model.send({ type: "start", rate: ctx.sampleRate });
  }
  async function stop() {
    if (node) { node.port.onmessage = null; node.disconnect(); node = null; }
    if (stream) { stream.getTracks().forEach((t) => t.stop()); stream = null; }
    if (ctx) { await ctx.close(); ctx = null; }
    clearInterval(timer); bar.style.width = "0%";
    model.set("recording", false); model.save_changes();
    model.send({ type: "stop", chunks: seq });
  }
  button.addEventListener("click", () => (model.get("recording") ? stop() : start()));
  show();
}
export default { render };
"""

_CSS = """
.wb-mic { display: flex; flex-wrap: wrap; align-items: center; gap: 10px; font-family: sans-serif; }
.wb-mic button { font-size: 14px; padding: 4px 14px; }
.wb-meter { width: 160px; height: 10px; background: #ddd; border-radius: 5px; overflow: hidden; }
.wb-bar { height: 100%; width: 0%; background: #2a9d3a; transition: width 80ms linear; }
.wb-msg { flex-basis: 100%; color: #b00020; }
.wb-transcript { flex-basis: 100%; font-size: 16px; min-height: 1.4em; }
.wb-transcript.wb-ended::after { content: "  | end of speech"; color: #b00020; font-size: 12px; }
"""


class MicCapture(anywidget.AnyWidget):
    """Record from the browser's microphone; blocks reach the kernel while recording.

    ``on_chunk(cb)``: ``cb(samples)`` for every block (16 kHz float32), as it arrives.
    ``audio()``: the whole recording; ``save(path)``: a wav; ``to_corpus(folder, text)``: wav + manifest line.
    ``connect(recognizer, endpointer=None)``: live transcript and end-of-speech mark in the widget.
    """
    _esm = _ESM
    _css = _CSS
    recording = traitlets.Bool(False).tag(sync=True)
    status = traitlets.Unicode("").tag(sync=True)
    transcript = traitlets.Unicode("").tag(sync=True)
    endpoint = traitlets.Float(-1.0).tag(sync=True)          # s into the recording, -1: none yet
    transcript_seq = traitlets.Int(-1).tag(sync=True)        # the block during which the transcript last changed
    sample_rate = traitlets.Int(MODEL_SAMPLE_RATE).tag(sync=True)
    block_ms = traitlets.Int(100).tag(sync=True)

    def __init__(self, **kw):
        super().__init__(**kw)
        self._blocks: list[np.ndarray] = []
        self._callbacks: list = []
        self.seq = -1
        self.arrivals: list[tuple[int, float, float]] = []   # (seq, browser time, kernel time) per block
        self.on_msg(self._on_msg)

    # -- messages from the browser ---------------------------------------------------------------------
    def _on_msg(self, _widget, content, buffers):
        kind = content.get("type")
        if kind == "start":
            self._blocks, self.arrivals = [], []
            self.transcript, self.endpoint = "", -1.0
            if int(content.get("rate", MODEL_SAMPLE_RATE)) != MODEL_SAMPLE_RATE:
                self.status = f"the browser records at {content['rate']} Hz; blocks are resampled to {MODEL_SAMPLE_RATE} Hz"
            for cb in self._callbacks:
                getattr(cb, "start", lambda: None)()
        elif kind == "chunk" and buffers:
            x = np.frombuffer(bytes(buffers[0]), dtype=np.int16).astype(np.float32) / 32768.0
            rate = int(content.get("rate", MODEL_SAMPLE_RATE))
            if rate != MODEL_SAMPLE_RATE:
                from ..audio import resample
                x = resample(x, rate, MODEL_SAMPLE_RATE)
            self._blocks.append(x)
            self.seq = int(content.get("seq", -1))
            self.arrivals.append((int(content.get("seq", -1)), float(content.get("t", 0.0)), time.time()))
            for cb in self._callbacks:
                cb(x)
        elif kind == "stop":
            for cb in self._callbacks:
                getattr(cb, "stop", lambda: None)()

    def feed(self, samples: np.ndarray, block_ms: int | None = None) -> None:
        """Replay audio through the same path as the browser's blocks (headless runs, tests)."""
        self._on_msg(self, {"type": "start", "rate": MODEL_SAMPLE_RATE}, [])
        n = int(MODEL_SAMPLE_RATE * (block_ms or self.block_ms) / 1000)
        pcm = (np.clip(np.asarray(samples, np.float32), -1, 1) * 32767).astype(np.int16)
        for k, a in enumerate(range(0, len(pcm), n)):
            self._on_msg(self, {"type": "chunk", "seq": k, "rate": MODEL_SAMPLE_RATE, "t": a / MODEL_SAMPLE_RATE},
                         [memoryview(pcm[a:a + n].tobytes())])
        self._on_msg(self, {"type": "stop"}, [])

    # -- the Python side's API -------------------------------------------------------------------------
    def on_chunk(self, callback) -> None:
        self._callbacks.append(callback)

    def audio(self) -> np.ndarray:
        return np.concatenate(self._blocks) if self._blocks else np.zeros(0, np.float32)

    @property
    def heard_s(self) -> float:
        """Seconds of audio received since the last start."""
        return sum(len(b) for b in self._blocks) / MODEL_SAMPLE_RATE

    def save(self, path: str | Path) -> Path:
        a = self.audio()
        if not len(a):
            raise ValueError("nothing recorded yet: press Record first")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        save_wav(path, a)
        return Path(path)

    def to_corpus(self, folder: str | Path, text: str, speaker: str = "mic", utt_id: str | None = None) -> dict:
        """Write the recording as ``folder/wav/<id>.wav`` and append its line to ``folder/recordings.json``
        (our corpus's NeMo-manifest format; word times unknown, the end of speech from silero-vad)."""
        from ..endpoint.signals import vad_windows
        folder = Path(folder)
        a = self.audio()
        if not len(a):
            raise ValueError("nothing recorded yet: press Record first")
        utt_id = utt_id or time.strftime("mic-%Y%m%d-%H%M%S")
        wav = self.save(folder / "wav" / f"{utt_id}.wav")
        probs, hop = vad_windows(a)
        speech = np.flatnonzero(probs >= 0.5)
        line = {"id": utt_id, "audio_filepath": str(wav.relative_to(folder)), "duration": round(len(a) / MODEL_SAMPLE_RATE, 4),
                "text": text, "speaker": speaker, "speech_start": round(float(speech[0] * hop), 3) if len(speech) else 0.0,
                "speech_end": round(float((speech[-1] + 1) * hop), 3) if len(speech) else 0.0,
                "words": [], "pauses": [], "noise": None, "truncated": False, "domain": "recording"}
        with open(folder / "recordings.json", "a") as f:
            f.write(json.dumps(line) + "\n")
        return line

    def connect(self, recognizer, endpointer=None):
        """Stream every block into ``recognizer`` (and ``endpointer``): the widget shows the partial
        transcript and marks the end of speech. Returns the live session (events, endpoint time)."""
        return _LiveSession(self, recognizer, endpointer)


class _LiveSession:
    def __init__(self, mic: MicCapture, recognizer, endpointer=None):
        self.mic, self.rec, self.ep = mic, recognizer, endpointer
        self.events: list = []
        self.first_text_at: float | None = None
        self.start()
        mic.on_chunk(self)

    def start(self):
        from ..endpoint import StreamingEndpointer
        self.state = self.rec.new_stream("mic")
        # the end-pointer reads this session's recogniser events (P(<EOU>), encoder output, transcript), so
        # the EOU and two-pass end-pointers fire live, not only the pause one
        self.live_ep = StreamingEndpointer(self.ep, frame_s=self.rec.frame_s) if self.ep is not None else None
        self.events, self.first_text_at = [], None

    def __call__(self, x: np.ndarray):
        from ..events import Partial
        new = self.rec.accept_audio(self.state, x)
        for e in new:
            self.events.append(e)
            if isinstance(e, Partial) and e.text != self.mic.transcript:
                self.mic.transcript_seq = getattr(self.mic, "seq", -1)
                self.mic.transcript = e.text
                if e.text and self.first_text_at is None:
                    self.first_text_at = time.time()
        if self.live_ep is not None and self.mic.endpoint < 0:
            t = self.live_ep.push(x, new)
            if t is not None:
                self.mic.endpoint = float(t)

    def stop(self):
        fin = self.rec.finalize(self.state)
        self.events += fin
        self.mic.transcript = fin[-1].text
        self.final = fin[-1]
