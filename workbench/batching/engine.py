"""Frame batching for an accelerator: many live streams, one batched cache-aware step, a flush on every pause.

On a CPU a stream's 30 ms frames can be stepped one chunk at a time; an accelerator is only busy when one
step carries many streams. The engine therefore

- accumulates each stream's frames into the model's chunk (chunk + lookahead feature frames, counted by the
  recogniser's own rule for live feature release, the same as decoding alone),
- computes the log-mel front end of all streams in a batch in **one** preprocessor call at dispatch
  (``front_end="batch"``), instead of one small call per 30 ms frame per stream (``front_end="frame"``, the
  per-frame CPU baseline): on a CPU the per-frame front end, not the encoder, was what capped the streams,
- gathers the complete chunks of different streams, at different positions in their audio, into **one
  batched cache-aware step** of the NeMo model (per-stream caches gathered into batch tensors and
  scattered back: ``StreamingRecognizer.step_batch``),
- dispatches when ``target_batch`` chunks are ready or the oldest has waited ``max_wait_ms``, and
- **flushes a stream at once** when its pause detector fires (silence >= ``pause_ms`` after speech): its
  complete chunks run immediately, and its audio so far is decoded to a result (``Final`` with
  ``reason="pause"``) on a *copy* of its state, the partial last chunk padded as the model requires. The
  stream itself is untouched, so if speech resumes it goes on exactly as if never flushed, and whether the
  pause was the end is the end-pointer's call, not the batcher's.

Time is explicit (``now`` in seconds, any clock): ``LiveBatcher`` drives it from the wall clock for a
caller (a widget, a server), ``workbench.batching.simulation`` from a virtual clock whose steps cost what they
really cost on this device.
"""
from __future__ import annotations

import asyncio
import copy
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..asr.streaming import StreamingRecognizer, StreamState
from ..audio import MODEL_SAMPLE_RATE


class FrameError(ValueError):
    """A frame the engine cannot take (wrong dtype, rate, shape, NaN ...): rejected for its stream only."""


class BatcherFailed(RuntimeError):
    """The live batcher's loop failed (the model raised, say): raised to whoever reads ``events()`` or
    submits next, with the original error as its cause, instead of a silent hang."""


class UnknownStreamError(KeyError):
    """A stream id that is not open (never opened, or already closed)."""


@dataclass(frozen=True)
class BatchPolicy:
    """When to run a batch. ``pause_ms=None`` switches the pause flush off."""
    target_batch: int = 8           # run as soon as this many streams have a complete chunk
    max_wait_ms: float = 40.0       # ... or when the oldest complete chunk has waited this long
    pause_ms: float | None = 300.0  # silence after speech that flushes a stream at once
    max_batch: int | None = None    # cap on streams per step (None: every stream that is ready)
    front_end: str = "batch"        # "batch": features of a batch's streams in one call at dispatch;
                                    # "frame": each frame's features as it arrives (the per-frame baseline)

    def __post_init__(self):
        if self.target_batch < 1:
            raise ValueError(f"target_batch must be >= 1, got {self.target_batch}")
        if self.max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be >= 0, got {self.max_wait_ms}")
        if self.pause_ms is not None and self.pause_ms <= 0:
            raise ValueError(f"pause_ms must be > 0 or None, got {self.pause_ms}")
        if self.max_batch is not None and self.max_batch < 1:
            raise ValueError(f"max_batch must be >= 1 or None, got {self.max_batch}")
        if self.front_end not in ("batch", "frame"):
            raise ValueError(f"front_end must be 'batch' or 'frame', got {self.front_end!r}")


# -- pause detectors: push a frame, get True once when a pause long enough has just completed -----------
class PauseDetector:
    """Base: speech probability per frame -> pause event. Subclasses give ``speech_prob(frame)``."""

    def __init__(self, pause_ms: float, threshold: float = 0.5):
        self.pause_s, self.threshold = pause_ms / 1000, threshold
        self.heard_speech, self.silence_s, self.fired = False, 0.0, False

    def speech_prob(self, frame: np.ndarray) -> float:
        raise NotImplementedError

    def push(self, frame: np.ndarray) -> bool:
        p = self.speech_prob(frame)
        if p >= self.threshold:
            self.heard_speech, self.silence_s, self.fired = True, 0.0, False
            return False
        self.silence_s += len(frame) / MODEL_SAMPLE_RATE
        if self.heard_speech and not self.fired and self.silence_s >= self.pause_s - 1e-9:
            self.fired = True      # once per pause; re-armed by the next speech
            return True
        return False


class SileroPause(PauseDetector):
    """silero-vad (its bundled model; no download) over 512-sample windows; a frame's probability is that
    of the last complete window. One model state per stream."""

    def __init__(self, pause_ms: float, threshold: float = 0.5):
        super().__init__(pause_ms, threshold)
        from ..audio import load_silero_vad
        self.model = load_silero_vad()
        self.rest = np.zeros(0, np.float32)
        self.prob = 0.0

    def speech_prob(self, frame: np.ndarray) -> float:
        import torch
        x = np.concatenate([self.rest, frame])
        n = len(x) // 512 * 512
        with torch.inference_mode():
            for a in range(0, n, 512):
                self.prob = float(self.model(torch.from_numpy(x[a:a + 512]), MODEL_SAMPLE_RATE))
        self.rest = x[n:]
        return self.prob


class ScriptedPause(PauseDetector):
    """Replays speech probabilities computed beforehand (one per ``hop_s`` of stream audio), so a benchmark
    keeps the VAD, which runs in front of the device, out of the device's time."""

    def __init__(self, pause_ms: float, probs: np.ndarray, hop_s: float, threshold: float = 0.5):
        super().__init__(pause_ms, threshold)
        self.probs, self.hop_s, self.t = np.asarray(probs, np.float32), hop_s, 0.0

    def speech_prob(self, frame: np.ndarray) -> float:
        self.t += len(frame) / MODEL_SAMPLE_RATE
        i = min(len(self.probs) - 1, int(self.t / self.hop_s) - 1)
        return float(self.probs[i]) if i >= 0 else 0.0


def silero_probs(audio: np.ndarray) -> tuple[np.ndarray, float]:
    """silero-vad speech probability per 512-sample window of a whole recording, and the window (s)."""
    import torch
    from ..audio import load_silero_vad
    model = load_silero_vad()
    n = len(audio) // 512 * 512
    with torch.inference_mode():
        probs = [float(model(torch.from_numpy(np.ascontiguousarray(audio[a:a + 512], np.float32)), MODEL_SAMPLE_RATE))
                 for a in range(0, n, 512)]
    return np.asarray(probs, np.float32), 512 / MODEL_SAMPLE_RATE


# -- the engine --------------------------------------------------------------------------------------
@dataclass
class Step:
    """One dispatched encoder step (or a pause flush's final decode): who, when, how long."""
    start: float                   # clock time the step began
    duration: float                # measured compute time, s
    stream_ids: list
    ready_times: list              # when each stream's chunk became complete (None for a flush final)
    kind: str = "batch"            # "batch" | "flush" | "close" | "front" (a frame's features, per-frame mode)

    @property
    def end(self) -> float:
        return self.start + self.duration


@dataclass
class _Stream:
    state: StreamState
    pause: PauseDetector | None
    ready: deque = field(default_factory=deque)   # completion times of the complete, not yet run chunks
    urgent: bool = False                          # pause fired: run now, then decode a result


class FrameBatcher:
    """Streams join (``open``/first ``submit``), push frames (``submit``) and leave (``close``/``drop``);
    ``poll(now)`` runs whatever the policy says is due and returns the events it produced.

    Every event is the same one the stream would give decoded alone through ``recognizer`` (checked by the
    tests under random load): batching changes when results come, never what they are.
    """

    def __init__(self, recognizer: StreamingRecognizer, policy: BatchPolicy = BatchPolicy(),
                 pause_factory: Callable[[str], PauseDetector | None] | None = None,
                 on_event: Callable[[object], None] | None = None, timer: Callable[[], float] = time.perf_counter):
        self.rec, self.policy = recognizer, policy
        self.pause_factory = pause_factory if pause_factory is not None else (
            (lambda sid: SileroPause(policy.pause_ms)) if policy.pause_ms else (lambda sid: None))
        self.on_event = on_event
        self.timer = timer
        self.streams: dict[str, _Stream] = {}
        self.steps: list[Step] = []                # what ran, for benchmarks and timelines

    # -- streams -------------------------------------------------------------------------------------
    def open(self, stream_id: str) -> None:
        if stream_id in self.streams:
            raise ValueError(f"stream {stream_id!r} is already open")
        self.streams[stream_id] = _Stream(self.rec.new_stream(stream_id), self.pause_factory(stream_id))

    def _get(self, stream_id: str) -> _Stream:
        try:
            return self.streams[stream_id]
        except KeyError:
            raise UnknownStreamError(f"stream {stream_id!r} is not open (closed already, or never opened)") from None

    def _check_frame(self, stream_id: str, frame, sample_rate: int) -> np.ndarray:
        if sample_rate != MODEL_SAMPLE_RATE:
            raise FrameError(f"stream {stream_id!r}: frame at {sample_rate} Hz; the engine takes "
                             f"{MODEL_SAMPLE_RATE} Hz (resample before submitting)")
        if not isinstance(frame, np.ndarray):
            raise FrameError(f"stream {stream_id!r}: frame must be a numpy array, got {type(frame).__name__}")
        if frame.ndim != 1:
            raise FrameError(f"stream {stream_id!r}: frame must be mono 1-D samples, got shape {frame.shape}")
        if frame.dtype == np.int16:
            frame = frame.astype(np.float32) / 32768.0
        elif frame.dtype not in (np.float32, np.float64):
            raise FrameError(f"stream {stream_id!r}: frame dtype {frame.dtype}; use float32 in [-1, 1] or int16")
        if not np.isfinite(frame).all():
            raise FrameError(f"stream {stream_id!r}: frame contains NaN or infinite samples")
        return frame.astype(np.float32, copy=False)

    def submit(self, stream_id: str, frame: np.ndarray, now: float, sample_rate: int = MODEL_SAMPLE_RATE) -> None:
        """Queue one frame (any length) of ``stream_id``, opening the stream if new. A bad frame raises
        :class:`FrameError` and changes nothing, for this stream or any other."""
        if stream_id not in self.streams:
            self._check_frame(stream_id, frame, sample_rate)
            self.open(stream_id)
        s = self._get(stream_id)
        x = self._check_frame(stream_id, frame, sample_rate)
        if s.state.finished:
            raise ValueError(f"stream {stream_id!r} is closing")
        if len(x) == 0:
            return
        st = s.state
        st.audio.append(x)
        st.n_samples += len(x)
        if self.policy.front_end == "frame":
            # the per-frame baseline's front end runs on the device now, booked as a step of its own, so its
            # cost sits on the same timeline as the batched mode's (there: inside the batch's step)
            t0 = self.timer()
            self.rec.release_features([st])
            self.steps.append(Step(now, self.timer() - t0, [stream_id], [None], "front"))
        for _ in range(self.rec.pending_chunks(st) - len(s.ready)):
            s.ready.append(now)
        if s.pause is not None and s.pause.push(x):
            s.urgent = True

    def close(self, stream_id: str, now: float) -> list:
        """The stream leaves: its remaining audio runs at once (partial chunk padded) and its ``Final``
        is returned; its state is freed."""
        s = self._get(stream_id)
        t0 = self.timer()
        events = self.rec.finalize(s.state)
        self.steps.append(Step(now, self.timer() - t0, [stream_id], [None], "close"))
        del self.streams[stream_id]
        return self._emit(events)

    def drop(self, stream_id: str) -> None:
        """Forget a stream without a result (a client that vanished)."""
        self._get(stream_id)
        del self.streams[stream_id]

    # -- dispatch ------------------------------------------------------------------------------------
    def next_due(self) -> float | None:
        """Clock time at which ``poll`` will next have work (None: nothing queued); ``-inf``: now."""
        if any(s.urgent for s in self.streams.values()):
            return float("-inf")
        ready = [s.ready[0] for s in self.streams.values() if s.ready]
        if not ready:
            return None
        if len(ready) >= self.policy.target_batch:
            return float("-inf")
        return min(ready) + self.policy.max_wait_ms / 1000

    def poll(self, now: float) -> list:
        """Run what is due at ``now``: every urgent (pause-flushed) stream, then batches while the policy
        says so. Returns the events, in order. The steps' compute times are in ``self.steps``."""
        events = []
        while True:
            due = self.next_due()
            if due is None or due > now + 1e-12:
                return events
            events += self.dispatch(now)
            now = self.steps[-1].end if self.steps else now

    def dispatch(self, now: float) -> list:
        """Run one dispatch now, whatever the policy says (``poll`` calls it when due): urgent streams
        and the longest-waiting ready ones in one batched step, then the urgent streams' results."""
        urgent = [sid for sid, s in self.streams.items() if s.urgent]
        ready = sorted((s.ready[0], sid) for sid, s in self.streams.items() if s.ready)
        # urgent streams ride first, then the longest-waiting ones
        order = [sid for sid in urgent if self.streams[sid].ready] + [sid for _, sid in ready if sid not in urgent]
        if self.policy.max_batch:
            order = order[:self.policy.max_batch]
        events = []
        if order:
            events += self._step(order, now)
            now = self.steps[-1].end
        for sid in urgent:
            s = self.streams[sid]
            if s.ready:           # more complete chunks than one step takes: run them first
                continue
            s.urgent = False
            events += self._flush_final(sid, now)
            now = self.steps[-1].end
        return events

    def _step(self, order: list, now: float) -> list:
        """One batched step over the next chunk of each stream in ``order`` (grouped by chunk kind, as a
        batch must not mix first and later chunks)."""
        front_s = 0.0
        if self.policy.front_end == "batch":
            t0 = self.timer()
            self.rec.release_features([self.streams[sid].state for sid in order])   # one front-end call
            front_s = self.timer() - t0
        groups: dict = {}
        for sid in order:
            ch = self.rec.next_chunk(self.streams[sid].state, final=False)
            groups.setdefault((ch.drop_extra, ch.is_last), []).append((sid, ch))
        events = []
        for members in groups.values():
            sids = [sid for sid, _ in members]
            ready = [self.streams[sid].ready.popleft() for sid in sids]
            t0 = self.timer()
            events += self.rec.step_batch([self.streams[sid].state for sid in sids], [c for _, c in members])
            self.steps.append(Step(now, self.timer() - t0 + front_s, sids, ready, "batch"))
            front_s = 0.0
            now = self.steps[-1].end
        return self._emit(events)

    def _flush_final(self, sid: str, now: float) -> list:
        """Decode the stream's audio so far to a result on a copy of its state (the stream goes on)."""
        st = self.streams[sid].state
        probe = copy.copy(st)
        probe.audio = list(st.audio)
        probe.hyp = copy.deepcopy(st.hyp)
        probe.encoded = list(st.encoded)           # the copy's steps append to its own list
        probe.decisions, probe.probes = list(st.decisions), []
        t0 = self.timer()
        self.rec.release_features([probe], final=True)
        self.rec.run_chunks(probe, final=True)     # its partials and <EOU> are the copy's, not the stream's
        fin = self.rec.result(probe)
        fin.reason = "pause"
        events = [fin]
        self.steps.append(Step(now, self.timer() - t0, [sid], [None], "flush"))
        return self._emit(events)

    def _emit(self, events: list) -> list:
        if self.on_event is not None:
            for e in events:
                self.on_event(e)
        return events


class _Failure:
    def __init__(self, exc: BaseException):
        self.exc = exc


class LiveBatcher:
    """The engine on the wall clock for a live caller: ``submit``/``close`` from any coroutine, results
    from ``async for event in batcher.events()``. A background task polls when work is due. If that task
    fails, ``events()`` raises :class:`BatcherFailed` at once (and so does the next ``submit``): a consumer
    never waits forever on a dead loop."""

    def __init__(self, recognizer: StreamingRecognizer, policy: BatchPolicy = BatchPolicy(), **kw):
        self.engine = FrameBatcher(recognizer, policy, **kw)
        self.queue: asyncio.Queue = asyncio.Queue()
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._closed = False
        self.error: BaseException | None = None

    @staticmethod
    def now() -> float:
        return time.monotonic()

    def _check(self) -> None:
        if self.error is not None:
            raise BatcherFailed(f"the live batcher stopped: {self.error!r}") from self.error

    def submit(self, stream_id: str, frame: np.ndarray, sample_rate: int = MODEL_SAMPLE_RATE) -> None:
        self._check()
        self.engine.submit(stream_id, frame, self.now(), sample_rate)
        self._start()
        self._wake.set()

    def close(self, stream_id: str) -> None:
        self._check()
        for e in self.engine.close(stream_id, self.now()):
            self.queue.put_nowait(e)

    def _start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop())

    async def _loop(self) -> None:
        try:
            while not self._closed:
                due = self.engine.next_due()
                wait = None if due is None else max(0.0, due - self.now())
                if wait is None or wait > 0:
                    self._wake.clear()
                    try:
                        await asyncio.wait_for(self._wake.wait(), timeout=wait)
                    except asyncio.TimeoutError:
                        pass
                    continue
                for e in self.engine.poll(self.now()):
                    self.queue.put_nowait(e)
                await asyncio.sleep(0)
        except Exception as exc:          # reaches the consumer at once, never a hang
            self.error = exc
            self.queue.put_nowait(_Failure(exc))

    async def events(self):
        while True:
            e = await self.queue.get()
            if e is None:
                return
            if isinstance(e, _Failure):
                raise BatcherFailed(f"the live batcher stopped: {e.exc!r}") from e.exc
            yield e

    async def aclose(self) -> None:
        """Close every open stream (their finals are queued), stop the loop, end ``events()``."""
        if self.error is None:
            for sid in list(self.engine.streams):
                self.close(sid)
        self._closed = True
        self._wake.set()
        if self._task is not None:
            await self._task
        self.queue.put_nowait(None)
