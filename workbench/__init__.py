"""speech-workbench: the components of a voice-assistant speech stack, one room each."""
__version__ = "0.1.0"

import importlib.abc
import sys

# NeMo 3 builds a config's ``_target_`` only from an allow-list of namespaces (``UnsafeTargetError``
# otherwise). Our shipped ``.nemo`` files name our preprocessor, so ``import workbench`` is enough for
# ``ASRModel.restore_from`` to open them, whether NeMo is imported before or after us, and without
# importing NeMo here (it takes seconds).
_NEMO_COMMON = "nemo.core.classes.common"
NEMO_TARGETS = ("workbench.asr.features.GlobalMVNMelSpectrogram", "workbench.asr.whisper_encoder.WhisperStreamingEncoder")


def _allow_targets(module) -> None:
    allowed = getattr(module, "ALLOWED_TARGET_PREFIXES", None)
    if allowed is not None:
        for t in NEMO_TARGETS:
            if t not in allowed:
                allowed.append(t)


class _AllowAfterExec(importlib.abc.Loader):
    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        _allow_targets(module)


class _NemoAllowListHook(importlib.abc.MetaPathFinder):
    """Adds our targets to NeMo's allow-list the moment NeMo's module is executed."""

    def find_spec(self, name, path, target=None):
        if name != _NEMO_COMMON:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _AllowAfterExec(spec.loader)
                return spec
        return None


if _NEMO_COMMON in sys.modules:
    _allow_targets(sys.modules[_NEMO_COMMON])
elif not any(isinstance(f, _NemoAllowListHook) for f in sys.meta_path):
    sys.meta_path.insert(0, _NemoAllowListHook())
