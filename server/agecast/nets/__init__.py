"""agecast's own networks (plain torch modules): ``df`` (agecast-df, the face swap) and
``reage`` (agecast-reage, the re-ageing delta U-Net). The trainers train them, the exporters
write them to ONNX, the torch backend rebuilds them from a package's weights."""
