"""The camera widget's face mesh, vendored: MediaPipe's legacy JS solution ``@mediapipe/face_mesh`` from npm.

The package bundles everything the page needs (loader JS, the WebAssembly runtime, the packed model assets), so
``make setup`` fetches its tarball once, checks it against the registry's published sha512, and unpacks the files
into ``data/vendor/face_mesh``. At run time nothing is fetched: the kernel sends these files to the page over the
widget's own channel and the page loads them from blob URLs (so it works on a remote JupyterHub as on localhost).
"""
from __future__ import annotations

import base64
import hashlib
import io
import os
import tarfile
from pathlib import Path

PACKAGE = "@mediapipe/face_mesh"
VERSION = "0.4.1657299874"
TARBALL = f"https://registry.npmjs.org/{PACKAGE}/-/face_mesh-{VERSION}.tgz"
INTEGRITY = "sha512-Jdza+77HjDH4SQ6/DAYmnKUYdh2fU1GbhuGqXZbkK5rnJKpZLZe5KQeJmwUq9dmkYkCPSq4oe9vmcuveRPpwag=="
FILES = ("face_mesh.js", "face_mesh.binarypb", "face_mesh_solution_packed_assets.data",
         "face_mesh_solution_packed_assets_loader.js", "face_mesh_solution_simd_wasm_bin.js",
         "face_mesh_solution_simd_wasm_bin.wasm", "face_mesh_solution_wasm_bin.js", "face_mesh_solution_wasm_bin.wasm")
DEFAULT_DIR = Path(__file__).resolve().parents[2] / "data" / "vendor" / "face_mesh"


class FaceMeshMissingError(FileNotFoundError):
    """The vendored face mesh is not there (``make setup`` fetches it; offline, copy the npm tarball in)."""


def asset_dir() -> Path:
    return Path(os.environ.get("WORKBENCH_FACE_MESH", DEFAULT_DIR))


def check_integrity(data: bytes, integrity: str = INTEGRITY) -> None:
    algo, want = integrity.split("-", 1)
    got = base64.b64encode(hashlib.new(algo, data).digest()).decode()
    if got != want:
        raise ValueError(f"{PACKAGE}@{VERSION}: the tarball's {algo} is {got}, the registry publishes {want}")


def unpack(tarball: bytes, folder: Path | None = None, integrity: str = INTEGRITY) -> Path:
    """Check ``tarball`` (the npm .tgz) and write the files the page needs; all or nothing."""
    check_integrity(tarball, integrity)
    folder = Path(folder or asset_dir())
    tmp = folder.with_name(folder.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tar:
        for name in FILES:
            (tmp / name).write_bytes(tar.extractfile(f"package/{name}").read())
    (tmp / "VERSION").write_text(VERSION + "\n")
    if folder.exists():
        for p in folder.iterdir():
            p.unlink()
        folder.rmdir()
    tmp.rename(folder)
    return folder


def vendor(folder: Path | None = None, tarball: Path | None = None) -> Path:
    """Fetch (or read ``tarball``), check and unpack the face mesh; a no-op when this version is already there."""
    folder = Path(folder or asset_dir())
    if (folder / "VERSION").exists() and (folder / "VERSION").read_text().strip() == VERSION \
            and all((folder / f).exists() for f in FILES):
        return folder
    if tarball is not None:
        data = Path(tarball).read_bytes()
    else:
        import urllib.request
        with urllib.request.urlopen(TARBALL, timeout=60) as r:
            data = r.read()
    return unpack(data, folder)


def load(folder: Path | None = None) -> dict[str, bytes]:
    """The files a page loads, by name (both WebAssembly builds: the library chooses the SIMD one where the
    browser has SIMD, and asks for it by name)."""
    folder = Path(folder or asset_dir())
    names = list(FILES)
    missing = [f for f in names if not (folder / f).exists()]
    if missing:
        raise FaceMeshMissingError(f"the face mesh ({PACKAGE}@{VERSION}) is missing from {folder}: {missing[:3]}; "
                                   f"run `make setup` (or python -m workbench.widgets.assets) to vendor it")
    return {f: (folder / f).read_bytes() for f in names}


if __name__ == "__main__":
    print(vendor())
