"""Built-in model architectures and baselines, registered through `register_models`.

Each builder is ``builder(dim, context_len, **params)`` -> a module mapping (B, L, dim) to unit
rows (B, dim). The defaults are the original lnsp-phase-4 sizes; examples use smaller ones.
"""

from __future__ import annotations

from workbench.api import (AttentionMixtureNetwork, ContextMean, CopyLast, FrameWeightsModel, GRUStack,
                           LinearExtrapolation, LSTMBaseline, Param, ResidualRidge, Ridge, SimpleMLP,
                           TransformerVectorPredictor, hookimpl)


def _dropout(default: float) -> Param:
    return Param("dropout", "float", default, "dropout probability", min=0.0, max=0.95)


@hookimpl
def register_models(register):
    register("transformer", TransformerVectorPredictor,
             description="causal transformer decoder (memory = input), last-position head; 17.9M params at D=768",
             params=(
                 Param("d_model", "int", 512, "width of the attention layers", min=1),
                 Param("num_layers", "int", 4, "number of decoder layers", min=1),
                 Param("nhead", "int", 8, "attention heads (must divide d_model)", min=1),
                 Param("dim_feedforward", "int", 2048, "hidden size of each feed-forward block", min=1),
                 _dropout(0.1),
             ))
    register("lstm", LSTMBaseline, description="stacked LSTM, last timestep projected to D; 5.1M params at D=768",
             params=(
                 Param("hidden_dim", "int", 512, "LSTM hidden size", min=1),
                 Param("num_layers", "int", 2, "stacked LSTM layers", min=1),
                 _dropout(0.2),
             ))
    register("gru", GRUStack, description="residual GRU blocks with LayerNorm; 7.1M params at D=768",
             params=(
                 Param("d_model", "int", 512, "GRU width", min=1),
                 Param("num_layers", "int", 4, "GRU blocks", min=1),
                 _dropout(0.0),
             ))
    register("amn", AttentionMixtureNetwork,
             description="attention mixture: context mean plus a learned residual; 1.5M params at D=768",
             params=(
                 Param("d_model", "int", 256, "attention key/query width", min=1),
                 Param("hidden_dim", "int", 512, "residual MLP width (then half of it)", min=2),
                 Param("zero_residual", "bool", False, "zero-initialise the residual's last layer: start exactly "
                                                        "at the context mean"),
             ))
    register("frame_weights", FrameWeightsModel,
             description="learned weights over the context frames; starts at the frame-weights baseline",
             params=(
                 Param("mode", "str", "free", "free weights, or softmax weights (start uniform: the context mean)",
                       choices=("free", "softmax")),
                 Param("per_dim", "bool", False, "one weight per frame and dimension instead of per frame"),
                 Param("init", "str", "fitted", "fitted: the least-squares frame weights of the train part (the "
                                                "frame_weights baseline); mean: uniform (the context mean)",
                       choices=("fitted", "mean")),
             ))
    register("residual_ridge", ResidualRidge,
             description="ridge fitted on the train part (frozen) plus a small MLP correction that starts at zero",
             params=(Param("hidden_dim", "int", 64, "width of the correction MLP", min=1),))
    register("mlp", SimpleMLP, description="flattened context -> hidden (ReLU) -> D",
             params=(
                 Param("hidden_dim", "int", 1024, "hidden width", min=1),
                 _dropout(0.1),
             ))
    register("copy_last", CopyLast, description="baseline: predicts the last context chunk")
    register("context_mean", ContextMean, description="baseline: mean of the context chunks")
    register("linear_extrapolation", LinearExtrapolation,
             description="baseline: c_last + (c_last - c_prev), one more step along the last move")
    register("ridge", Ridge, description="baseline: closed-form ridge regression, fitted on the train split",
             params=(Param("alpha", "float", 1.0, "L2 penalty of the ridge fit", min=1e-12),))
