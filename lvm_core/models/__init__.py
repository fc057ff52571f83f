"""Networks and the baselines (one definition each, numpy and torch), the fitted baselines and the model input."""
