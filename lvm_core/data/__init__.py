"""Data: the article store, windows and splits, corpora, text, embedding, the store builder and the data checks."""
