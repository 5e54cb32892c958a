"""Media primitives, the bottom layer: H.264/JPEG encoding, RGB ↔ 4:2:0 frames, MP4 writing, the
monitor's wire protocol and the fan-out of encoded pictures to viewers. Nothing here knows of
faces, identities or the pipeline."""
