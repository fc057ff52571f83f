"""The plugin API: every name a plugin imports from lvm-workbench, built-in or third-party.

    from workbench.api import hookimpl, Param, InputError, Batch

The built-in plugins (plugins/, imported as lvm_plugins) import nothing else from lvm-workbench
(tests/test_layering.py checks it), so what they can do, any plugin can. The hooks and the
protocol each one registers are documented in workbench/hookspecs.py; docs/plugins.md has
worked examples. A name here stays importable from here when the modules behind it move.
"""

from __future__ import annotations

from lvm_core.data.corpus import Corpus, Document
from lvm_core.data.embedding import Embedder, EmbedderUnavailable, check_weights, default_cache_dir
from lvm_core.data.text import extract_html, markdown_paragraphs
from lvm_core.data.windows import make_windows
from lvm_core.errors import InputError
from lvm_core.evaluation import diagnostics
from lvm_core.evaluation.battery import MODEL, OFFSETS, Check, Gate, SplitPredictions, SplitSamples, Verdict, split_kind
from lvm_core.evaluation.bootstrap import paired_intervals
from lvm_core.evaluation.metrics import ArticleBlock, article_blocks, rank_summaries, within_article_ranks_both
from lvm_core.models.baselines import ContextMean, CopyLast, LinearExtrapolation, Ridge
from lvm_core.models.networks import (ARCHITECTURES, AttentionMixtureNetwork, GRUStack, LatentVectorModel, LSTMBaseline,
                             SimpleMLP, TransformerVectorPredictor)
from lvm_core.models.start_at_baseline import FrameWeightsModel, ResidualRidge
from lvm_core.params import Param
from lvm_core.training.batch import Batch

from .hookspecs import hookimpl

__all__ = [
    # declaring a plugin
    "hookimpl", "Param", "InputError",
    # loss strategies (register_losses)
    "Batch",
    # model architectures (register_models)
    "ARCHITECTURES", "LatentVectorModel", "TransformerVectorPredictor", "GRUStack", "LSTMBaseline", "SimpleMLP",
    "AttentionMixtureNetwork", "CopyLast", "ContextMean", "LinearExtrapolation", "Ridge", "FrameWeightsModel",
    "ResidualRidge",
    # gates (register_gates): the gate protocol and its vocabulary
    "Gate", "Check", "Verdict", "SplitSamples", "SplitPredictions", "split_kind", "MODEL", "OFFSETS",
    "paired_intervals", "ArticleBlock", "article_blocks", "rank_summaries", "within_article_ranks_both",
    "make_windows",
    # data diagnostics (register_diagnostics)
    "diagnostics",
    # corpus readers and embedders (register_corpus_readers, register_embedders)
    "Corpus", "Document", "extract_html", "markdown_paragraphs", "Embedder", "EmbedderUnavailable",
    "check_weights", "default_cache_dir",
]
