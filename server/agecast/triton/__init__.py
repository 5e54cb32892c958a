"""Triton Inference Server tooling: the model repository writer and a local server (tests)."""
