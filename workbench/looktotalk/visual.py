"""The camera's cue, per frame (~12 Hz), as the browser's face mesh would send it: face present, head yaw and pitch
(degrees), a gaze-at-camera score (0-1), mouth opening (0-1).

**Simulated.** No recordings of faces with speech exist offline, so training and evaluation cue sequences are
drawn from the distributions below, which follow what look-to-talk systems describe: a person speaking to the
device looks at it (small head angles, high gaze score), one speaking to someone else mostly turns to them
(yaw around ±35°), but not always (a share looks at the screen while talking to a person: the visual cue's hard
case); blinks drop the gaze score for a frame or two, the face is sometimes lost (occlusion, out of view).
Every number here is a choice written down, not a measurement; the bench labels visual results as simulated.
"""
from __future__ import annotations

import numpy as np

FPS = 12.0
CUES = ("face", "yaw", "pitch", "gaze", "mouth")
LOOKS_AWAY = 0.75          # side talk turned to the other person; the rest looks at the device anyway
NO_FACE = {True: 0.03, False: 0.10}    # whole utterance without a face (out of view)
OCCLUDED_FRAME = 0.04      # a frame lost now and then
BLINKS_PER_S = 0.3


def simulate(directed: bool, seconds: float, rng: np.random.Generator) -> np.ndarray:
    """One utterance's cue sequence (frames, len(CUES)), from 0.5 s before speech to its end."""
    n = max(2, int(round((seconds + 0.5) * FPS)))
    out = np.zeros((n, len(CUES)), np.float32)
    if rng.random() < NO_FACE[directed]:
        return out                                          # no face: zeros, face = 0
    away = (not directed) and rng.random() < LOOKS_AWAY
    side = rng.choice([-1.0, 1.0])
    yaw0 = side * rng.normal(35, 12) if away else rng.normal(0, 7)
    pitch0 = rng.normal(-5, 6)
    walk = np.cumsum(rng.normal(0, 1.2, n))                # slow head drift
    yaw = yaw0 + walk + rng.normal(0, 2, n)
    pitch = pitch0 + 0.5 * walk + rng.normal(0, 2, n)
    # gaze at the camera falls off with the head angle; eyes can look at the screen from a turned head a little
    gaze = np.clip(np.exp(-(np.abs(yaw) / 25) ** 2 - (np.abs(pitch) / 30) ** 2) + rng.normal(0, 0.08, n), 0, 1)
    blink = rng.random(n) < BLINKS_PER_S / FPS
    blink |= np.roll(blink, 1)
    gaze[blink] *= 0.2
    speaking = np.arange(n) >= int(0.5 * FPS)
    mouth = np.clip(np.where(speaking, rng.uniform(0.2, 0.8, n), rng.uniform(0.0, 0.1, n)), 0, 1)
    face = (rng.random(n) >= OCCLUDED_FRAME).astype(np.float32)
    out[:] = np.stack([face, yaw, pitch, gaze, mouth], 1) * face[:, None]
    return out


def summarise(seq: np.ndarray) -> np.ndarray:
    """What the visual classifier reads: share of frames with a face; over those, mean gaze, share of frames
    looking (gaze > 0.5), mean |yaw|, mean |pitch|, the gaze of the last second."""
    face = seq[:, 0] > 0.5
    if not face.any():
        return np.zeros(6, np.float32)
    f = seq[face]
    last = seq[-int(FPS):]
    lf = last[last[:, 0] > 0.5]
    return np.array([face.mean(), f[:, 3].mean(), (f[:, 3] > 0.5).mean(), np.abs(f[:, 1]).mean() / 45,
                     np.abs(f[:, 2]).mean() / 45, lf[:, 3].mean() if len(lf) else 0.0], np.float32)
