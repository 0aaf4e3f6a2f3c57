"""BPE tokenizer for the streaming model, with the end-of-utterance pieces NeMo's EOU models require.

NeMo's EOU models check that ``<EOU>`` and ``<EOB>`` (end of backchannel) are the last two token ids.
SentencePiece is trained on the corpus texts with two pieces fewer, then the two are appended to the
model proto as user-defined pieces (what NeMo's own script for EOU tokenizers does).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

EOU, EOB = "<EOU>", "<EOB>"


def strip_special(text: str) -> str:
    """Decoded text without the end-of-utterance pieces, whitespace normalised."""
    return " ".join(text.replace(EOU, " ").replace(EOB, " ").split())


def write_tokenizer(model_proto: bytes, out_dir: str | os.PathLike):
    """tokenizer.model + vocab.txt (NeMo packs both into a .nemo) from a serialized SentencePiece model."""
    import sentencepiece as spm
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "tokenizer.model").write_bytes(model_proto)
    sp = spm.SentencePieceProcessor(model_file=str(out / "tokenizer.model"))
    (out / "vocab.txt").write_text("".join(sp.id_to_piece(i) + "\n" for i in range(sp.get_piece_size())))
    return sp


def _key_of(folder: Path) -> str | None:
    try:
        return json.loads((folder / "source.json").read_text())["key"]
    except (OSError, ValueError, KeyError):
        return None


def install_tokenizer(model_proto: bytes, out_dir: str | os.PathLike, key: str | None = None) -> Path:
    """:func:`write_tokenizer` into a private folder beside ``out_dir``, then moved into place whole. DDP ranks
    run the same preparation, at once when a cluster starts them together: the first to finish installs it, the
    others find the same ``key`` there and keep it, so no process deletes files another is reading."""
    out = Path(out_dir)
    key = key or hashlib.sha1(model_proto).hexdigest()
    if _key_of(out) == key:
        return out
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    write_tokenizer(model_proto, tmp)
    (tmp / "source.json").write_text(json.dumps({"key": key}))
    if _key_of(out) not in (None, key):                 # another run's tokenizer: replaced
        shutil.rmtree(out, ignore_errors=True)
    try:
        os.rename(tmp, out)
    except OSError:                                     # another process installed it first
        shutil.rmtree(tmp, ignore_errors=True)
        if _key_of(out) != key:
            raise
    return out


def train_tokenizer(texts: list[str], out_dir: str | os.PathLike, vocab_size: int = 128) -> Path:
    """Train SentencePiece BPE on ``texts`` into ``out_dir`` (tokenizer.model, vocab.txt); returns out_dir. A
    tokenizer already there from the same texts and size is kept (``source.json`` holds their digest)."""
    out = Path(out_dir)
    key = hashlib.sha1(f"{vocab_size}\n{chr(10).join(texts)}".encode()).hexdigest()
    if _key_of(out) == key:
        return out
    os.environ.setdefault("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", "python")   # to edit the model proto
    from nemo.collections.common.tokenizers.sentencepiece_tokenizer import create_spt_model
    from sentencepiece import sentencepiece_model_pb2 as spm_pb2

    raw = out.with_name(f".{out.name}.raw-{os.getpid()}")
    shutil.rmtree(raw, ignore_errors=True)
    raw.mkdir(parents=True)
    corpus = raw / "texts.txt"
    corpus.write_text("\n".join(texts) + "\n")
    create_spt_model(data_file=str(corpus), vocab_size=vocab_size - 2, sample_size=-1, do_lower_case=True,
                     tokenizer_type="bpe", output_dir=str(raw))
    proto = spm_pb2.ModelProto()
    proto.ParseFromString((raw / "tokenizer.model").read_bytes())
    for piece in (EOU, EOB):
        proto.pieces.append(spm_pb2.ModelProto.SentencePiece(piece=piece, score=0.0,
                                                             type=spm_pb2.ModelProto.SentencePiece.USER_DEFINED))
    install_tokenizer(proto.SerializeToString(), out, key)
    shutil.rmtree(raw, ignore_errors=True)
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=str(out / "tokenizer.model"))
    n = sp.get_piece_size()
    if n != vocab_size or sp.id_to_piece(n - 2) != EOU or sp.id_to_piece(n - 1) != EOB:
        raise RuntimeError(f"tokenizer came out with {n} pieces, last {sp.id_to_piece(n - 2)}, {sp.id_to_piece(n - 1)}")
    return out
