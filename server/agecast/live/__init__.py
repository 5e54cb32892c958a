"""The live service: one camera's pipeline → encode → fan-out, its controls, status and takes."""
