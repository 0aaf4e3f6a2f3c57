"""Whisper as a teacher: its encoder's frames, distilled into the streaming encoder while it trains.

Why: our recogniser has only ever heard synthesisers; Whisper's encoder was trained on 680 k hours of people.
Matching its representation of the same audio gives every encoder frame a dense target that transcripts alone
do not (DistilHuBERT-style feature distillation; here to a causal student with a lookahead).

How, on a CPU with no teacher weights in PyTorch (the packages carry CTranslate2 models, run-only):
- the teacher sees exactly the audio the student sees, augmentations included: a pre-hook on the model's
  preprocessor keeps the batch's waveforms; a hook on the encoder packs up to ``max_windows`` 30 s windows
  with the batch's utterances (20 ms aligned, a short gap between them), runs ``WhisperModel.encode`` on them
  and averages the teacher's 20 ms frames into the student's 80 ms frames;
- the student's encoder output goes through a linear head (``DistillHead``, dropped at export) and the
  loss is ``weight * (1 - cosine)`` over the frames both have, registered through NeMo's ``AccessMixin`` as an
  auxiliary loss, which NeMo's training step adds to the RNNT + CTC loss and logs;
- only in training: validation, export and inference never run the teacher.
"""
from __future__ import annotations

import numpy as np
import torch
from nemo.core.classes.mixins.access_mixins import AccessMixin

WHISPER_SR = 16000
WINDOW = 30 * WHISPER_SR          # samples in one Whisper window
HOP = 320                         # samples per teacher frame (20 ms)


def pack(lengths: list[int], max_windows: int = 1, gap: int = 3200) -> list[tuple[int, int, int]]:
    """(utterance, window, offset) for as many utterances, in order, as fit into ``max_windows`` windows of
    30 s with ``gap`` samples between them; offsets are multiples of the teacher's 20 ms hop."""
    out, w, pos = [], 0, 0
    for i, n in enumerate(lengths):
        if n > WINDOW:
            continue                              # longer than a window: no teacher for this one
        if pos + n > WINDOW:
            w, pos = w + 1, 0
            if w >= max_windows:
                break
        out.append((i, w, pos))
        pos += -(-(n + gap) // HOP) * HOP
    return out


def teacher_frames(model, audio: list[np.ndarray], max_windows: int = 1, student_hop: int = 1280) -> dict[int, np.ndarray]:
    """{utterance index: (frames, dim) teacher features at the student's rate}, for the utterances that fit."""
    placed = pack([len(a) for a in audio], max_windows)
    if not placed:
        return {}
    n_win = max(w for _, w, _ in placed) + 1
    windows = np.zeros((n_win, WINDOW), np.float32)
    for i, w, off in placed:
        windows[w, off:off + len(audio[i])] = audio[i]
    fe = model.feature_extractor
    feats = np.stack([fe(x)[:, :3000] for x in windows]).astype(np.float32)
    enc = model.encode(feats)
    enc = np.asarray(enc.to_device(__import__("ctranslate2").Device.cpu) if hasattr(enc, "to_device") else enc,
                     np.float32)
    per = student_hop // HOP                      # teacher frames per student frame (4 for 80 ms)
    out = {}
    for i, w, off in placed:
        first, n = off // HOP, len(audio[i]) // student_hop
        t = enc[w, first:first + n * per]
        n = len(t) // per
        if n:
            out[i] = t[:n * per].reshape(n, per, -1).mean(1)
    return out


class DistillHead(torch.nn.Module, AccessMixin):
    """The student's projection into the teacher's space, and the auxiliary loss NeMo adds to its own.
    A module of the model while it trains (so its weights are optimised and checkpointed), removed before
    the model is exported."""

    def __init__(self, d_model: int, teacher_dim: int, weight: float = 1.0):
        torch.nn.Module.__init__(self)
        self._registry = {}
        self.proj = torch.nn.Linear(d_model, teacher_dim)
        self.weight = weight

    def loss(self, encoded: torch.Tensor, encoded_len: torch.Tensor, targets: dict[int, np.ndarray]) -> torch.Tensor:
        """``encoded``: (B, D, T) encoder output; mean (1 - cosine) over the frames with a teacher target."""
        pairs = []
        for i, t in targets.items():
            n = min(int(encoded_len[i]), len(t))
            if n:
                s = self.proj(encoded[i, :, :n].transpose(0, 1))
                pairs.append((s, torch.from_numpy(t[:n]).to(s)))
        if not pairs:
            return encoded.sum() * 0.0
        s = torch.cat([p[0] for p in pairs])
        t = torch.cat([p[1] for p in pairs])
        return self.weight * (1 - torch.nn.functional.cosine_similarity(s.float(), t.float(), dim=-1)).mean()


class WhisperDistiller:
    """Attaches the teacher to a NeMo ASR model for training (``attach``) and takes it off (``detach``)."""

    def __init__(self, teacher: str = "base", weight: float = 1.0, max_windows: int = 1, threads: int = 2):
        from .peers import load_whisper
        self.teacher = load_whisper(teacher, cpu_threads=threads)
        self.weight, self.max_windows = weight, max_windows
        self._audio = None
        self._hooks = []
        self.last_loss = None

    def attach(self, model) -> "WhisperDistiller":
        d_model = int(model.cfg.encoder.d_model)
        probe = self.teacher.encode(np.zeros((1, 80, 3000), np.float32))
        dim = int(np.asarray(probe.to_device(__import__("ctranslate2").Device.cpu) if hasattr(probe, "to_device")
                             else probe).shape[-1])
        if not hasattr(model, "distill_head"):
            model.distill_head = DistillHead(d_model, dim, self.weight)
        self.head = model.distill_head
        hop = int(round(float(model.cfg.preprocessor.window_stride) * WHISPER_SR)) * int(model.cfg.encoder.subsampling_factor)

        def keep_audio(module, args, kwargs):
            if model.training:
                sig = kwargs.get("input_signal", args[0] if args else None)
                lens = kwargs.get("length", args[1] if len(args) > 1 else None)
                self._audio = [sig[i, :int(lens[i])].detach().float().cpu().numpy() for i in range(sig.shape[0])]

        def distil(module, args, kwargs, output):
            if not model.training or self._audio is None:
                return
            encoded, encoded_len = output[0], output[1]
            with torch.no_grad():
                targets = teacher_frames(self.teacher, self._audio, self.max_windows, hop)
            self._audio = None
            loss = self.head.loss(encoded, encoded_len, targets)
            self.last_loss = float(loss.detach())
            # NeMo's training step resets (and disables) the registry before the forward pass, and adds every
            # registered 'adapter_loss' after it only while access is enabled: enable it with the loss
            AccessMixin.set_access_enabled(access_enabled=True, guid=model.model_guid)
            self.head.register_accessible_tensor(name="adapter_loss", tensor=loss)

        self.head.model_guid = model.model_guid
        self._hooks = [model.preprocessor.register_forward_pre_hook(keep_audio, with_kwargs=True),
                       model.encoder.register_forward_hook(distil, with_kwargs=True)]
        return self

    def detach(self, model) -> None:
        """Remove hooks and head: the exported model is the plain NeMo model, with no trace of the teacher."""
        for h in self._hooks:
            h.remove()
        self._hooks = []
        AccessMixin.set_access_enabled(access_enabled=False, guid=model.model_guid)
        if hasattr(model, "distill_head"):
            del model.distill_head
