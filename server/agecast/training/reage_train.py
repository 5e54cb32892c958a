"""``agecast train --family agecast-reage``: fit the re-ageing U-Net to pairs of the same faces
at several ages, with the same run folder, checkpoints, resume, ``--minutes`` and previews as
the swap family (``agecast.training.train``).

``--src`` is the faceset of the faces at several ages (each face names its footage face in
``pair_of``: ``faceset age-synth`` writes exactly that); ``--dst`` is the footage faceset at the
actor's own age. Every 10th footage face is held out for previews and export's parity check.
The loss is L1 (weighted to the face) + DSSIM between the plate-plus-delta and the target, plus
the mask's error against the region the model may change (face and hair, without occluders
and the mouth interior).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Unpack

import numpy as np
import torch

from agecast.errors import TrainError
from agecast.faces.regions import REGIONS, target_age_map
from agecast.nets.reage import AGE_SCALE, FAMILY, ReageConfig, ReageNet
from agecast.training.faceset import Faceset
from agecast.training.losses import dssim
from agecast.training.reage_data import AgedFaces, OccluderStyle, ReageAugment, load_aged
from agecast.training.train import (
    How,
    Plan,
    RunOptions,
    RunRecord,
    Stepper,
    held_out_split,
    read_checkpoint,
    train_run,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReageOptions(RunOptions):
    steps: int = 3000
    lr: float = 1e-3
    resolution: int = 256
    dims: int = 16
    crop: int = 128  # training window; the model runs on whole crops
    init_from: str | None = None  # start from another reage run's weights (new data, same net)
    occluders: float = 0.5  # share of training samples with a synthetic occluder
    occluder_weight: float = 0.0  # extra loss weight on occluder pixels (leave them alone)
    occluder_style: OccluderStyle = "shapes"  # "textured": face-sized, lit, creased skin-likes


def reage_loss(
    net: ReageNet,
    face: torch.Tensor,
    maps: torch.Tensor,
    target: torch.Tensor,
    keep: torch.Tensor,
    occluded: torch.Tensor | None = None,
    occluder_weight: float = 0.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """L1 (weighted to the face, and to occluders by ``occluder_weight``) + DSSIM of the plate
    plus delta against the target, and the mask's error against ``keep``."""
    out, _, mask = net(face, maps)
    extra = occluder_weight * occluded if occluded is not None else 0.0
    weight = 0.2 + keep + extra
    l1 = ((out - target).abs() * weight).sum() / (weight.sum() * 3)
    d = dssim(out, target).mean()
    m = (((mask - keep) ** 2) * (1 + extra)).mean()
    total = 10 * l1 + 5 * d + 2 * m
    return total, {"l1": l1.item(), "dssim": d.item(), "mask": m.item()}


def load_reage_checkpoint(
    run: Path, device: torch.device | str = "cpu"
) -> tuple[ReageNet, dict[str, Any]]:
    return read_checkpoint(run, device, FAMILY, lambda c: ReageNet(ReageConfig.from_dict(c)))


@torch.no_grad()
def preview_grid(net: ReageNet, held: AgedFaces, rows: int = 3) -> np.ndarray:
    """HWC uint8: per held-out face, the plate | aged to the middle and oldest age | oldest with
    the eyes kept at the plate's age (a local offset) | the synthetic target at the oldest age."""
    was = net.training
    net.eval()
    n = min(rows, len(held))
    ages = held.ages.float()
    lo, hi = float(ages.min()), float(ages.max())
    size = held.images.shape[-1]
    plate = held.images[:n, int(torch.argmin(ages))].float() / 255
    regions = held.regions[:n].float()
    cols = [plate]
    eyes = REGIONS.index("eyes")
    for target, eyes_offset in (((lo + hi) / 2, 0.0), (hi, 0.0), (hi, lo - hi)):
        offsets = torch.zeros(n, len(REGIONS))
        offsets[:, eyes] = eyes_offset
        tmap = target_age_map(torch.full((n,), target), offsets, regions)
        maps = torch.cat([torch.full((n, 1, size, size), lo), tmap], 1) / AGE_SCALE
        cols.append(net(plate, maps)[0])
    cols.append(held.images[:n, int(torch.argmax(ages))].float() / 255)
    grid = torch.cat([torch.cat(list(r), dim=2) for r in zip(*cols, strict=True)], dim=1)
    net.train(was)
    return (grid.permute(1, 2, 0).clamp(0, 1).numpy() * 255).round().astype(np.uint8)


def _plan(src: Path, dst: Path, opts: ReageOptions, device: torch.device) -> Plan[ReageNet]:
    """An agecast-reage run's part: the aged pairs (a tenth held out) and the U-Net."""
    config = ReageConfig(resolution=opts.resolution, dims=opts.dims)
    footage = Faceset.load(dst)
    data = load_aged(Faceset.load(src), footage, opts.resolution)
    if opts.crop > opts.resolution or opts.crop % 32:
        raise TrainError(
            f"--crop {opts.crop}: use a multiple of 32 up to --resolution {opts.resolution}"
        )
    train_idx, held_idx = held_out_split(len(data))
    train_set, held = data.subset(train_idx), data.subset(held_idx)
    ages = [float(a) for a in data.ages]

    def started(net: ReageNet, command: str) -> str:
        if not opts.init_from:
            return command
        return _init_from(net, Path(opts.init_from), config, device, command)

    def stepper(net: ReageNet, opt: torch.optim.Optimizer, gen: torch.Generator) -> Stepper:
        return _stepper(net, opt, train_set, held, opts, gen, device)

    return Plan(
        config,
        footage.template,
        f"{len(train_set)} faces × {len(ages)} ages ({', '.join(f'{a:g}' for a in ages)}), "
        f"{len(held)} held out, {opts.resolution}px crops, {opts.crop}px windows",
        {"age_range": [min(ages), max(ages)], "held_out": held.files, "paired": True},
        lambda: ReageNet(config),
        load_reage_checkpoint,
        stepper,
        betas=(0.9, 0.99),
        started=started,
    )


def train_reage(
    src: Path, dst: Path, run: Path, options: ReageOptions, **how: Unpack[How]
) -> RunRecord:
    """Train (or resume) an ``agecast-reage`` run in ``run``; returns its record."""
    return train_run(FAMILY, _plan, src, dst, run, options, **how)


def _init_from(
    net: ReageNet, start: Path, config: ReageConfig, device: torch.device, command: str
) -> str:
    """Start ``net`` from another run's weights; returns the command line with that run's own
    (the run started from is part of how this one was made)."""
    loaded, _ = load_reage_checkpoint(start, device)
    if loaded.config != config:
        raise TrainError(f"--init-from {start} has model {loaded.config}, this run {config}")
    net.load_state_dict(loaded.state_dict())
    return f"{RunRecord.load(start).command}\n{command}"


def _stepper(
    net: ReageNet,
    opt: torch.optim.Optimizer,
    train_set: AgedFaces,
    held: AgedFaces,
    opts: ReageOptions,
    gen: torch.Generator,
    device: torch.device,
) -> Stepper:
    """One training step of an agecast-reage run (loss, its parts), and its preview grid."""
    aug = ReageAugment(
        crop=opts.crop, occluder_p=opts.occluders, occluder_style=opts.occluder_style
    )

    def one_step(step: int) -> tuple[torch.Tensor, dict[str, float]]:
        for group in opt.param_groups:  # cosine decay to a tenth over the planned steps
            group["lr"] = opts.lr * (0.55 + 0.45 * math.cos(math.pi * step / opts.steps))
        b = aug.batch(train_set, opts.batch, gen)
        return reage_loss(
            net,
            b.face.to(device),
            b.age_maps.to(device),
            b.target.to(device),
            b.mask.to(device),
            b.occluded.to(device),
            opts.occluder_weight,
        )

    def preview() -> np.ndarray:
        grid = preview_grid(net.cpu(), held)
        net.to(device)
        return grid

    return one_step, preview
