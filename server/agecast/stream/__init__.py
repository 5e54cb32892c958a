"""Encoding pictures to H.264 (files now; live fan-out to viewers builds on the same encoder)."""
