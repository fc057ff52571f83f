"""The original formats: NPZ import and export, .pt checkpoint import, and their checks."""
