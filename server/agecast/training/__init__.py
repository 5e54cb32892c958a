"""Identity training: facesets from footage, the model family, the trainer and export."""
