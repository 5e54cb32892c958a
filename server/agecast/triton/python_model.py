"""Triton Python-backend model that runs ``model.onnx`` (beside this file) with onnxruntime.

Copied by ``agecast triton repo --platform python`` into each version folder of the repository
(it is never imported by agecast itself: ``triton_python_backend_utils`` exists only inside
Triton's Python backend stub). For a Triton build without the ONNX Runtime backend — such as the
``tritonserver`` bundled in the ``nvidia-pytriton`` wheel, which the tests run on the CPU.

Requests that Triton's dynamic batcher hands over together run as one onnxruntime call (their
inputs concatenated on the batch axis), so Triton's execution count stays below its inference
count when cameras are batched. Tensors cross the stub by DLPack: the stub's ``as_numpy`` and
``Tensor(name, ndarray)`` lose the data under numpy 2 (checked with nvidia-pytriton 0.7.0's stub).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args: dict[str, str]) -> None:
        config = json.loads(args["model_config"])
        folder = Path(args["model_repository"]) / args["model_version"]
        params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = int(params.get("intra_op_threads", "1"))
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = onnxruntime.InferenceSession(
            str(folder / "model.onnx"), options, providers=["CPUExecutionProvider"]
        )
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.outputs = [o["name"] for o in config["output"]]
        self.batched = int(config.get("max_batch_size", 0)) > 0

    def execute(self, requests: list[Any]) -> list[Any]:
        feeds: dict[str, list[np.ndarray]] = {name: [] for name in self.inputs}
        sizes: list[int] = []
        for request in requests:
            for name in self.inputs:
                tensor = pb_utils.get_input_tensor_by_name(request, name)
                feeds[name].append(np.from_dlpack(tensor))
            sizes.append(feeds[self.inputs[0]][-1].shape[0] if self.batched else 1)
        if self.batched:
            joined = {k: np.concatenate(v) if len(v) > 1 else v[0] for k, v in feeds.items()}
            results = self.session.run(self.outputs, joined)
            bounds = np.cumsum([0, *sizes])
            split = [[r[bounds[i] : bounds[i + 1]] for r in results] for i in range(len(requests))]
        else:  # no batch axis: one run per request
            split = [
                self.session.run(self.outputs, {k: v[i] for k, v in feeds.items()})
                for i in range(len(requests))
            ]
        return [
            pb_utils.InferenceResponse(
                [
                    pb_utils.Tensor.from_dlpack(name, np.ascontiguousarray(r).__dlpack__())
                    for name, r in zip(self.outputs, rs, strict=True)
                ]
            )
            for rs in split
        ]

    def finalize(self) -> None:
        self.session = None
