"""``CameraCue``: the look-to-talk visual cue, computed on device, in the browser.

``getUserMedia`` video -> MediaPipe's face mesh (478 landmarks with the irises, WebAssembly, vendored by
``make setup``: see ``assets.py``) at ~12 Hz -> one small cue per frame to the kernel: face present, head yaw
and pitch (degrees), a gaze-at-camera score (0-1) and mouth opening (0-1), the same five numbers
``looktotalk.visual`` simulates for training. The frames themselves never leave the page. No camera, a denied
permission or no face in view: the widget says so and sends ``face = 0`` cues, so the acoustic cue alone
decides (the fusion was trained with the visual cue dropped).

Geometry (an approximation, written down): yaw from the depth difference across the face (landmarks 234 -> 454),
pitch from forehead -> chin (10 -> 152), both in degrees; the eyes' own turn adds to the head's from where each
iris centre (468, 473) sits between its eye's corners (33/133, 362/263); gaze-at-camera is
``exp(-(gaze_yaw / 25)^2 - (pitch / 30)^2)``, the falloff ``visual.simulate`` uses; mouth opening is the lip gap
(13 -> 14) over the face height, x 5, clipped.
"""
from __future__ import annotations

import time

import anywidget
import numpy as np
import traitlets

from ..looktotalk.visual import CUES, FPS

_ESM = r"""
const DEG = 180 / Math.PI;

export function cueFrom(lm, w, h) {
  const P = (i) => [lm[i].x * w, lm[i].y * h, lm[i].z * w];
  const sub = (a, b) => [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
  const across = sub(P(454), P(234)), down = sub(P(152), P(10));
  const yaw = Math.atan2(across[2], Math.abs(across[0])) * DEG;     // + : the face's image-right side is farther
  const pitch = Math.atan2(-down[2], Math.abs(down[1])) * DEG;      // + : chin nearer than forehead (looking up)
  const within = (c, a, b) => { const A = P(a), B = P(b), C = P(c), d = B[0] - A[0]; return d ? (C[0] - A[0]) / d - 0.5 : 0; };
  const eyes = lm.length > 473 ? (within(468, 33, 133) + within(473, 362, 263)) / 2 : 0;   // iris off the eye's centre
  const gazeYaw = yaw + 150 * eyes;
  const gaze = Math.exp(-((gazeYaw / 25) ** 2) - ((pitch / 30) ** 2));
  const height = Math.hypot(...down);
  const mouth = Math.min(1, Math.max(0, 5 * Math.hypot(...sub(P(14), P(13))) / Math.max(height, 1e-6)));
  return { face: 1, yaw, pitch, gaze, mouth };
}

async function loadFaceMesh(model) {
  if (window.__wbFaceMesh) return window.__wbFaceMesh;
  window.__wbFaceMesh = new Promise((resolve, reject) => {
    const onMsg = async (msg, buffers) => {
      if (!msg || msg.type !== "assets") return;
      model.off("msg:custom", onMsg);
      if (msg.error) return reject(new Error(msg.error));
      const urls = {};
      msg.names.forEach((n, k) => {
        const type = n.endsWith(".wasm") ? "application/wasm" : n.endsWith(".js") ? "application/javascript" : "application/octet-stream";
        urls[n] = URL.createObjectURL(new Blob([buffers[k]], { type }));
      });
      try {
        await new Promise((ok, bad) => {
          const s = document.createElement("script");
          s.src = urls["face_mesh.js"]; s.onload = ok; s.onerror = () => bad(new Error("face_mesh.js did not load"));
          document.head.appendChild(s);
        });
        const fm = new window.FaceMesh({ locateFile: (f) => urls[f] || f });
        // the library's default confidences: setting minDetectionConfidence in this build (0.4.1657299874) replaces
        // the detector's options and its graph aborts (options_.has_num_classes())
        fm.setOptions({ maxNumFaces: 1, refineLandmarks: true });
        await fm.initialize();
        resolve(fm);
      } catch (e) { reject(e); }
    };
    model.on("msg:custom", onMsg);
    model.send({ type: "assets?" });
  });
  window.__wbFaceMesh.catch(() => { window.__wbFaceMesh = null; });
  return window.__wbFaceMesh;
}

function render({ model, el }) {
  el.classList.add("wb-cam");
  const button = document.createElement("button");
  const video = document.createElement("video"); video.muted = true; video.playsInline = true; video.className = "wb-video";
  const info = document.createElement("div"); info.className = "wb-cue";
  const score = document.createElement("div"); score.className = "wb-score";
  const bar = document.createElement("div"); bar.className = "wb-sbar"; score.appendChild(bar);
  const msg = document.createElement("div"); msg.className = "wb-msg";
  el.append(button, video, info, score, msg);
  let stream = null, timer = null, busy = false, t0 = 0, fm = null;
  // for the browser test: the geometry, and the last landmarks it read
  const debug = (window.__wb_cam = window.__wb_cam || { cueFrom, last: null });
  const show = () => {
    button.textContent = model.get("running") ? "■ Camera off" : "● Camera on";
    msg.textContent = model.get("status");
    const s = model.get("score");
    score.style.display = s < 0 ? "none" : "block";
    bar.style.width = (100 * Math.max(0, s)) + "%";
    bar.textContent = s < 0 ? "" : "meant for the device: " + s.toFixed(2);
    bar.classList.toggle("wb-yes", s >= model.get("threshold"));
  };
  ["running", "status", "score", "threshold"].forEach((k) => model.on("change:" + k, show));
  const say = (why) => { model.set("status", why); model.save_changes(); };
  const send = (cue) => {
    info.textContent = cue.face ? `face · yaw ${cue.yaw.toFixed(0)}° · pitch ${cue.pitch.toFixed(0)}° · gaze ${cue.gaze.toFixed(2)} · mouth ${cue.mouth.toFixed(2)}`
                                : "no face in view";
    model.send({ type: "cue", t: (performance.now() - t0) / 1000, ...cue });
  };
  const none = { face: 0, yaw: 0, pitch: 0, gaze: 0, mouth: 0 };
  async function tick() {
    if (busy || !fm || video.readyState < 2) return;
    busy = true;
    try {
      let got = null;
      fm.onResults((r) => { got = r; });
      await fm.send({ image: video });
      const faces = got && got.multiFaceLandmarks;
      if (faces && faces.length) {
        debug.last = { landmarks: faces[0].map((p) => ({ x: p.x, y: p.y, z: p.z })), w: video.videoWidth, h: video.videoHeight };
        send(cueFrom(faces[0], video.videoWidth, video.videoHeight));
        if (model.get("status").startsWith("No face")) say("");
      } else { send(none); if (!model.get("status")) say("No face in view: the acoustic cue alone decides."); }
    } catch (e) { say("Face mesh error: " + e.message); }
    busy = false;
  }
  const fail = (why) => { say(why + " The acoustic cue alone decides."); model.set("running", false); model.save_changes();
                          model.send({ type: "unavailable", why }); };
  async function start() {
    if (!window.isSecureContext) return fail("The camera needs a secure page: open JupyterLab over https or on localhost.");
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) return fail("This browser gives no camera access.");
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 } });
    } catch (e) {
      if (e.name === "NotAllowedError" || e.name === "SecurityError") return fail("Camera permission denied.");
      if (e.name === "NotFoundError" || e.name === "OverconstrainedError") return fail("No camera found.");
      return fail("Camera error: " + e.name + ": " + e.message + ".");
    }
    video.srcObject = stream; await video.play();
    say("Loading the face mesh…");
    try { fm = await loadFaceMesh(model); }
    catch (e) { stream.getTracks().forEach((t) => t.stop()); stream = null; return fail("The face mesh did not load (" + e.message + ")."); }
    say("");
    t0 = performance.now();
    model.set("running", true); model.save_changes();
    model.send({ type: "start", width: video.videoWidth, height: video.videoHeight });
    timer = setInterval(tick, 1000 / model.get("fps"));
  }
  function stop() {
    clearInterval(timer); timer = null;
    if (stream) { stream.getTracks().forEach((t) => t.stop()); stream = null; }
    video.srcObject = null;
    model.set("running", false); model.save_changes();
    model.send({ type: "stop" });
  }
  button.addEventListener("click", () => (model.get("running") ? stop() : start()));
  show();
}
export default { render };
"""

_CSS = """
.wb-cam { display: flex; flex-wrap: wrap; align-items: center; gap: 10px; font-family: sans-serif; }
.wb-cam button { font-size: 14px; padding: 4px 14px; }
.wb-video { width: 160px; border-radius: 4px; background: #222; }
.wb-cue { font-size: 13px; color: #333; }
.wb-score { flex-basis: 100%; height: 18px; background: #eee; border-radius: 4px; overflow: hidden; }
.wb-sbar { height: 100%; background: #999; color: #fff; font-size: 12px; white-space: nowrap; padding-left: 4px; }
.wb-sbar.wb-yes { background: #2a9d3a; }
.wb-msg { flex-basis: 100%; color: #b00020; }
"""


class CameraCue(anywidget.AnyWidget):
    """The browser camera's look-to-talk cue, ~12 per second, as it arrives.

    ``sequence(t0, t1)``: the cues between two kernel times as a (frames, 5) array in ``visual.CUES`` order
    (what ``visual.summarise`` and the fused model read); ``available``: False after the camera was refused or
    missing; ``score``: a running look-to-talk score to show (set by ``looktotalk.live``), -1 for none.
    """
    _esm = _ESM
    _css = _CSS
    running = traitlets.Bool(False).tag(sync=True)
    status = traitlets.Unicode("").tag(sync=True)
    fps = traitlets.Float(FPS).tag(sync=True)
    score = traitlets.Float(-1.0).tag(sync=True)
    threshold = traitlets.Float(0.5).tag(sync=True)

    def __init__(self, **kw):
        super().__init__(**kw)
        self.cues: list[tuple[float, np.ndarray]] = []      # (kernel time, CUES values)
        self.available = True
        self.on_msg(self._on_msg)

    def _on_msg(self, _widget, content, buffers):
        kind = content.get("type")
        if kind == "assets?":
            from .assets import FaceMeshMissingError, load
            try:
                files = load()          # both WebAssembly builds: the library picks SIMD or not itself
            except FaceMeshMissingError as e:
                self.send({"type": "assets", "error": str(e)})
                return
            self.send({"type": "assets", "names": list(files)}, buffers=list(files.values()))
        elif kind == "cue":
            self.push([content.get(k, 0.0) for k in CUES])
        elif kind == "start":
            self.available, self.cues = True, []
        elif kind == "unavailable":
            self.available = False

    def push(self, values, at: float | None = None) -> None:
        """One cue (the browser's, or a replayed one: headless runs and tests)."""
        v = np.asarray(values, np.float32)
        if v.shape != (len(CUES),) or not np.isfinite(v).all():
            raise ValueError(f"a cue is {len(CUES)} finite numbers {CUES}, got {values!r}")
        self.cues.append((time.time() if at is None else float(at), v))

    def sequence(self, t0: float | None = None, t1: float | None = None) -> np.ndarray:
        rows = [v for t, v in self.cues if (t0 is None or t >= t0) and (t1 is None or t <= t1)]
        return np.stack(rows) if rows else np.zeros((0, len(CUES)), np.float32)
