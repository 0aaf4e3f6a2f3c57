"""Shared fixtures. Corpora built by the tests (and by notebooks the tests run) go to a temporary
folder through WORKBENCH_CORPUS_ROOT, never into the user's data/."""
import os
import shutil
import tempfile
from pathlib import Path

_ROOT = tempfile.mkdtemp(prefix="workbench-test-corpora-")
os.environ["WORKBENCH_CORPUS_ROOT"] = _ROOT   # before workbench is imported (and inherited by kernels)

import pytest  # noqa: E402
import torch  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"

# Every wall-clock bound in the suite is a safety net around an event (a process's exit, a selector, a kernel's
# reply), never the thing measured: on a machine several times slower (two shared cores) each bound stretches by
# this factor, while a passing test still returns at its event. WORKBENCH_TEST_PATIENCE=1 gives the bare bounds.
PATIENCE = float(os.environ.get("WORKBENCH_TEST_PATIENCE", "5"))


def patience(seconds: float) -> float:
    """``seconds`` stretched for a slow machine (see PATIENCE)."""
    return seconds * PATIENCE


@pytest.fixture(scope="session")
def corpus_root() -> Path:
    return Path(_ROOT)


@pytest.fixture(scope="session")
def smoke_corpus(corpus_root) -> Path:
    from workbench.data import build_corpus
    return build_corpus("smoke", seed=0, root=corpus_root, progress=False)


@pytest.fixture(scope="session")
def tiny_nemo(smoke_corpus, tmp_path_factory):
    """A randomly initialised model of the recipe's architecture (small), saved as .nemo: equivalence of
    streaming and offline computation does not need trained weights."""
    from nemo.collections.asr.models.asr_eou_models import EncDecHybridRNNTCTCBPEEOUModel
    from workbench.asr.recipe import eou_manifest, load_profile, model_config
    from workbench.asr.tokenizer import train_tokenizer
    from workbench.data import open_dataset
    d = tmp_path_factory.mktemp("tiny_asr")
    cfg = load_profile("small", ["model.encoder.n_layers=2", "model.encoder.d_model=64", "model.encoder.n_heads=2",
                                 "model.model_defaults.enc_hidden=64",
                                 "model.decoding.greedy.max_symbols=3"])   # random weights: keep decoding short
    entries = {s: open_dataset(smoke_corpus, s).entries for s in ("train", "dev", "test")}
    manifests = {s: eou_manifest(e, d / f"{s}.json") for s, e in entries.items()}
    tok = train_tokenizer([e["text"] for e in entries["train"]], d / "tok", 64)
    torch.manual_seed(0)
    model = EncDecHybridRNNTCTCBPEEOUModel(cfg=model_config(cfg, manifests, tok), trainer=None)
    path = d / "tiny.nemo"
    model.save_to(str(path))
    return path


@pytest.fixture(scope="session")
def tiny_model(tiny_nemo):
    from workbench.asr.streaming import load_model
    return load_model(tiny_nemo, device="cpu")


def _tiny_lm_config():
    from workbench.lm.domain import DomainLMConfig
    return DomainLMConfig(vocab_size=300, hidden_size=32, layers=1, heads=2, intermediate_size=64, max_tokens=48,
                          batch_size=16, warmup_steps=5, max_steps=40, threads=1)


@pytest.fixture(scope="session")
def tiny_lm_dir(smoke_corpus, tmp_path_factory):
    """The domain-LM recipe at toy size, trained on the smoke corpus's training text (seconds)."""
    from workbench.lm.domain import corpus_texts, train_domain_lm
    out = tmp_path_factory.mktemp("lm") / "tiny"
    meta = train_domain_lm(corpus_texts(smoke_corpus, "train"), corpus_texts(smoke_corpus, "dev"), out, _tiny_lm_config())
    return out, meta


@pytest.fixture(scope="session")
def tiny_lm(tiny_lm_dir):
    from workbench.lm import load_causal_lm
    return load_causal_lm(tiny_lm_dir[0], device="cpu")


@pytest.fixture(scope="session")
def shipped_model():
    """The committed default recogniser (data/models/asr_small): real hypotheses, far apart in score."""
    from workbench.asr.streaming import load_model
    return load_model(Path(__file__).resolve().parents[1] / "data" / "models" / "asr_small" / "model.nemo", device="cpu")


@pytest.fixture(scope="session")
def test_audio(smoke_corpus):
    from workbench.data import open_dataset
    ds = open_dataset(smoke_corpus, "test")
    return [ds.audio(i) for i in range(3)]


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_ROOT, ignore_errors=True)
