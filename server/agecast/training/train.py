"""``agecast train``: fit an identity model to a src faceset (the identity) and a dst faceset
(the footage), with checkpoints, resume, preview grids and a run record export reads.

A run folder holds:
- ``run.json``: options, model config, facesets, age range, held-out faces, loss history;
- ``checkpoint.pt``: model, optimiser, step and random state (written atomically);
- ``previews/step_NNNNNN.png``: rows of held-out footage faces | swapped at each age, and a row
  of identity faces | their reconstruction.

Two losses per step (each DSSIM + L1 on the face region, plus the mask's error):
- dst → dst decoder: the shared latent must describe the footage;
- src → src decoder (at the src face's age): the src decoder must draw the identity; or, when
  the src faceset was derived from the dst faceset face by face (``pair_of``, as with a
  synthetic age target), paired: dst face → src decoder must give its own aged counterpart,
  which teaches the swap directly instead of leaving it to the shared latent.

A tenth of the footage faces (every 10th) is held out of training: previews and export's parity
check use faces the model has never fitted.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Generic, TypedDict, TypeVar, Unpack, cast

import numpy as np
import torch
from PIL import Image

from agecast.errors import TrainError
from agecast.nets.df import AgeNet, ModelConfig
from agecast.training.data import Augment, FaceTensors, load_faces
from agecast.training.faceset import Faceset
from agecast.training.losses import face_loss, mask_loss

log = logging.getLogger(__name__)

DF = "agecast-df"
RUN_FILE = "run.json"
CHECKPOINT = "checkpoint.pt"
HELD_OUT_EVERY = 10


@dataclass(frozen=True, slots=True)
class RunOptions:
    """What every family's run is told: its length, batch, learning rate and crop size, the
    loop's pace and the machine to train on. A family's options add its own."""

    steps: int = 2000
    batch: int = 8
    lr: float = 2e-4
    resolution: int = 128
    save_every: int = 250
    preview_every: int = 250
    seed: int = 0
    device: str = "auto"
    minutes: float | None = None  # stop (and checkpoint) after this much training time
    log_every: int = 100  # a log line with step, loss and speed (for runs without a terminal)
    threads: int = 0  # CPU threads for torch (0 = torch's default)


@dataclass(frozen=True, slots=True)
class TrainOptions(RunOptions):
    encoder_dims: int = 24
    decoder_dims: int = 16
    age: bool | None = None  # None: age-conditioned when the src faceset has several ages
    # share of samples whose swap input carries a synthetic occluder (hand, cup, hair…), with
    # the target mask cut out under it: the model learns to leave what crosses a face alone
    occluders: float = 0.0


@dataclass(slots=True)
class Progress:
    step: int
    steps: int
    losses: dict[str, float]
    steps_per_s: float


N = TypeVar("N", bound=torch.nn.Module)


def checked_checkpoint(
    run: Path, loaded: tuple[N, dict[str, Any]], config: Any
) -> tuple[N, dict[str, Any]]:
    """A resumed run's network and state, if its model is the one the run expects."""
    net, state = loaded
    if getattr(net, "config", None) != config:
        raise TrainError(
            f"{run}'s checkpoint has model {getattr(net, 'config', None)}, the run expects {config}"
        )
    return net, state


def restore(opt: torch.optim.Optimizer, gen: torch.Generator, state: dict[str, Any]) -> None:
    """A resumed run's optimiser and random state (nothing for a new run)."""
    if state:
        opt.load_state_dict(state["optimizer"])
        gen.set_state(state["generator"])


@dataclass(slots=True)
class RunRecord:
    """``run.json``."""

    src: str
    dst: str
    template: str
    options: dict[str, Any]
    config: dict[str, Any]
    age_range: list[float] | None
    held_out: list[str]
    paired: bool
    command: str
    device: str
    created: str
    step: int = 0
    seconds: float = 0.0
    history: list[dict[str, float]] = field(default_factory=list)
    family: str = DF  # the model family trained (older runs: agecast-df)

    def save(self, run: Path) -> None:
        tmp = run / (RUN_FILE + ".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2))
        os.replace(tmp, run / RUN_FILE)

    @classmethod
    def new(
        cls, src: Path, dst: Path, template: str, options: Any, config: Any, device: torch.device,
        **fields: Any,
    ) -> RunRecord:  # fmt: skip
        """A new run's record: ``options`` and ``config`` are the run's dataclasses."""
        return cls(
            src=str(src), dst=str(dst), template=template, options=asdict(options),
            config=config.to_dict(), device=str(device),
            created=datetime.now(UTC).isoformat(timespec="seconds"), **fields,
        )  # fmt: skip

    @classmethod
    def load(cls, run: Path) -> RunRecord:
        path = run / RUN_FILE
        if not path.is_file():
            raise TrainError(
                f"{run} is not a training run ({RUN_FILE} missing): run `agecast train`"
            )
        try:
            return cls(**json.loads(path.read_text()))
        except (json.JSONDecodeError, TypeError) as exc:
            raise TrainError(f"{path} is damaged ({exc}); start a new run") from exc


Opts = TypeVar("Opts")


def run_options(run: Path, src: Path, dst: Path, options: Opts, resume: bool, family: str) -> Opts:
    """The options a run trains with: a resumed run keeps its own (all but steps, device and
    minutes) and must be of ``family`` on the same facesets; a new one needs an unused folder."""
    if not resume:
        if (run / RUN_FILE).exists():
            raise TrainError(f"{run} already holds a run: pass --resume, or choose a new --out")
        return options
    record = RunRecord.load(run)
    if record.family != family:
        raise TrainError(
            f"{run} holds an {record.family} run; resume it with --family {record.family}"
        )
    if Path(record.src) != src or Path(record.dst) != dst:
        raise TrainError(
            f"{run} was trained on {record.src} and {record.dst}; resume with the same "
            "facesets or start a new run"
        )
    kept = {**record.options, "steps": 0, "device": "", "minutes": None}
    mine = cast(Any, options)
    changed = {"steps": mine.steps, "device": mine.device, "minutes": mine.minutes}
    return cast(Opts, replace(type(mine)(**kept), **changed))


def pick_train_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise TrainError("--device cuda asked for, but torch sees no CUDA device; use --device cpu")
    if name not in ("cpu", "cuda"):
        raise TrainError(f"--device {name!r}: use auto, cpu or cuda")
    return torch.device(name)


def held_out_split(n: int) -> tuple[list[int], list[int]]:
    """Which of ``n`` footage faces train and which are held out (every 10th; at least the last
    one, which trains too where it is the only face)."""
    held = [i for i in range(n) if i % HELD_OUT_EVERY == HELD_OUT_EVERY - 1]
    train_idx = [i for i in range(n) if i % HELD_OUT_EVERY != HELD_OUT_EVERY - 1]
    if not held:
        held = [n - 1]
        train_idx = train_idx[:-1] or train_idx
    return train_idx, held


@dataclass(slots=True)
class _Data:
    src: FaceTensors
    dst: FaceTensors
    held_out: FaceTensors
    pairs: torch.Tensor | None  # for each src face, the index of its dst face in ``dst``
    age_range: tuple[float, float] | None


def _prepare(src_set: Faceset, dst_set: Faceset, resolution: int, want_age: bool | None) -> _Data:
    if src_set.template != dst_set.template:
        raise TrainError(
            f"facesets are aligned differently: {src_set.path} uses template "
            f"{src_set.template!r}, {dst_set.path} uses {dst_set.template!r}; extract both with "
            "the same --template"
        )
    for fs in (src_set, dst_set):
        if fs.size < resolution:
            raise TrainError(
                f"{fs.path} holds {fs.size}px crops, smaller than --resolution {resolution}; "
                f"extract with --size {resolution} or more, or train at a lower resolution"
            )
    dst_all = load_faces(dst_set, resolution)
    if len(dst_all) < 2:
        raise TrainError(f"{dst_set.path} has {len(dst_all)} face(s); training needs at least 2")
    train_idx, held = held_out_split(len(dst_all))
    dst = dst_all.subset(train_idx)
    held_out = dst_all.subset(held)
    src = load_faces(src_set, resolution)
    known = ~torch.isnan(src.ages)
    age_range: tuple[float, float] | None = None
    if want_age is not False:
        if bool(known.any()) and not bool(known.all()):
            missing = src.files[int((~known).nonzero()[0])]
            raise TrainError(
                f"{src_set.path}: some faces have an age and some do not (e.g. {missing}); "
                "give every face an age or none"
            )
        if bool(known.all()) and float(src.ages.max() - src.ages.min()) > 0:
            age_range = (float(src.ages.min()), float(src.ages.max()))
        elif want_age:
            raise TrainError(
                f"--age asks for an age-conditioned model, but {src_set.path} does not record "
                "at least two different ages"
            )
    # Paired training when every src face names the dst face it was made from.
    pairs: torch.Tensor | None = None
    records = src_set.records
    if all(r.pair_of for r in records):
        where = {f: i for i, f in enumerate(dst.files)}
        keep = [i for i, r in enumerate(records) if r.pair_of in where]
        if keep:  # src faces made from held-out dst faces stay out of training too
            src = src.subset(keep)
            pairs = torch.tensor([where[records[i].pair_of or ""] for i in keep])
    if len(src) < 1:
        raise TrainError(f"{src_set.path} has no faces left to train on")
    return _Data(src, dst, held_out, pairs, age_range)


def _age01(ages: torch.Tensor, age_range: tuple[float, float] | None) -> torch.Tensor | None:
    if age_range is None:
        return None
    lo, hi = age_range
    return ((ages - lo) / (hi - lo)).clamp(0, 1).reshape(-1, 1)


def _branch(
    pred: tuple[torch.Tensor, torch.Tensor], target: torch.Tensor, mask: torch.Tensor
) -> tuple[torch.Tensor, dict[str, float]]:
    face, pred_mask = pred
    parts = face_loss(face, target, mask)
    m = mask_loss(pred_mask, mask)
    total = 10 * parts["dssim"] + 10 * parts["l1"] + 5 * m
    return total, {"dssim": parts["dssim"].item(), "l1": parts["l1"].item(), "mask": m.item()}


def save_checkpoint(
    run: Path, net: Any, opt: torch.optim.Optimizer, step: int, gen: torch.Generator, family: str
) -> None:
    """``checkpoint.pt`` of a run of ``family``, written atomically (temporary file, rename)."""
    tmp = run / (CHECKPOINT + ".tmp")
    torch.save(
        {
            "step": step,
            "family": family,
            "config": net.config.to_dict(),
            "model": net.state_dict(),
            "optimizer": opt.state_dict(),
            "generator": gen.get_state(),
        },
        tmp,
    )
    os.replace(tmp, run / CHECKPOINT)


def read_checkpoint(
    run: Path, device: torch.device | str, family: str, make: Callable[[dict[str, Any]], N]
) -> tuple[N, dict[str, Any]]:
    """A run's network of ``family`` (``make`` builds it from its config) and saved state."""
    path = run / CHECKPOINT
    if not path.is_file():
        raise TrainError(f"{run} has no {CHECKPOINT}: train it first (`agecast train`)")
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:
        raise TrainError(f"{path} cannot be read ({exc}); resume from an earlier copy") from exc
    if state.get("family", DF) != family:  # agecast-df checkpoints once named no family
        raise TrainError(f"{path} is not an {family} checkpoint")
    net = make(state["config"]).to(device)
    net.load_state_dict(state["model"])
    return net, state


def load_checkpoint(run: Path, device: torch.device | str = "cpu") -> tuple[AgeNet, dict[str, Any]]:
    return read_checkpoint(run, device, DF, lambda c: AgeNet(ModelConfig.from_dict(c)))


@torch.no_grad()
def preview_grid(net: AgeNet, data: _Data, device: torch.device, rows: int = 4) -> np.ndarray:
    """HWC uint8: held-out footage | swapped (youngest, middle, oldest age) per row, then a row of
    identity faces | their reconstruction."""
    net.eval()
    n = min(rows, len(data.held_out))
    dst = data.held_out.images[:n].to(device)
    cols = [dst]
    if data.age_range is not None:
        for a in (0.0, 0.5, 1.0):
            cols.append(net.swap(dst, torch.full((n, 1), a, device=device))[0])
    else:
        cols.append(net.swap(dst)[0])
    grid_rows = [torch.cat(list(c), dim=2) for c in zip(*cols, strict=True)]
    src = data.src.images[: len(cols) // 2 + 1].to(device)
    recon = net.src(net.latent(src), _age01(data.src.ages[: src.shape[0]], data.age_range))[0]
    bottom = torch.cat([*src, *recon], dim=2)
    width = grid_rows[0].shape[2]
    bottom = torch.nn.functional.pad(bottom[:, :, :width], (0, max(0, width - bottom.shape[2])))
    grid = torch.cat([*grid_rows, bottom], dim=1)
    net.train()
    return (grid.permute(1, 2, 0).clamp(0, 1).cpu().numpy() * 255).round().astype(np.uint8)


RunOpts = TypeVar("RunOpts", bound=RunOptions)


def begin(
    run: Path, src: Path, dst: Path, options: RunOpts, resume: bool, family: str
) -> tuple[torch.device, RunOpts]:
    """A run's device (and torch's CPU threads) and its options (a resumed run's own)."""
    device = pick_train_device(options.device)
    if options.threads > 0:
        torch.set_num_threads(options.threads)
    return device, run_options(run, src, dst, options, resume, family)


def _occlude(
    inp: torch.Tensor, mask: torch.Tensor, share: float, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """``share`` of the batch with a synthetic occluder over the input and cut out of the
    target mask (the swap's mask must leave it to the plate)."""
    if share <= 0:
        return inp, mask
    from agecast.training.reage_data import occluder

    inp, mask = inp.clone(), mask.clone()
    size = inp.shape[-1]
    for i in (torch.rand(inp.shape[0], generator=gen) < share).nonzero().flatten().tolist():
        shade, alpha = (t.to(inp.device) for t in occluder(size, gen))
        inp[i] = inp[i] + (shade - inp[i]) * alpha
        mask[i] = mask[i] * (1 - alpha)
    return inp, mask


def _stepper(
    net: AgeNet, data: _Data, opts: TrainOptions, gen: torch.Generator, device: torch.device
) -> Callable[[int], tuple[torch.Tensor, dict[str, float]]]:
    """One training step of an agecast-df run: (loss, its parts)."""
    aug = Augment()
    images = {k: getattr(data, k).images.to(device) for k in ("src", "dst")}
    masks = {k: getattr(data, k).masks.to(device) for k in ("src", "dst")}
    src_ages = _age01(data.src.ages, data.age_range)

    def one_step(step: int) -> tuple[torch.Tensor, dict[str, float]]:
        si = torch.randint(len(data.src), (opts.batch,), generator=gen)
        di = torch.randint(len(data.dst), (opts.batch,), generator=gen)
        src_draw = aug.draw(opts.batch, opts.resolution, gen)
        dst_draw = aug.draw(opts.batch, opts.resolution, gen)
        s_in, s_t, s_m = aug.apply(src_draw, images["src"][si], masks["src"][si])
        d_in, d_t, d_m = aug.apply(dst_draw, images["dst"][di], masks["dst"][di])
        age = src_ages[si].to(device) if src_ages is not None else None
        loss_d, _ = _branch(net.dst(net.latent(d_in)), d_t, d_m)
        losses = {"dst": loss_d.item()}
        if data.pairs is not None:
            # Paired: the src face's own footage face, augmented exactly like it, must
            # decode to it. This trains the src decoder on the same targets as the src
            # branch would, from the inputs the swap will see, so it replaces that branch.
            pd = data.pairs[si]
            s_in, _, _ = aug.apply(src_draw, images["dst"][pd], masks["dst"][pd])
        s_in, s_m = _occlude(s_in, s_m, opts.occluders, gen)
        loss_s, parts_s = _branch(net.src(net.latent(s_in), age), s_t, s_m)
        losses["src" if data.pairs is None else "paired"] = loss_s.item()
        losses.update({f"src_{k}": v for k, v in parts_s.items()})
        return loss_s + loss_d, losses

    return one_step


Step = Callable[[int], tuple[torch.Tensor, dict[str, float]]]
Stepper = tuple[Step, Callable[[], np.ndarray]]  # one step (its loss and parts), the preview


class How(TypedDict, total=False):
    """How any family's run is driven: resumed (its own options kept), told each step's
    progress, asked whether to stop, and the command line that started it (for the manifest)."""

    resume: bool
    on_progress: Callable[[Progress], None] | None
    should_stop: Callable[[], bool] | None
    command: str


@dataclass(frozen=True, slots=True)
class Plan(Generic[N]):
    """A family's part of a run, made from its facesets and options: what the run shares
    (:func:`train_run`: seed, resume, optimiser, loop, checkpoints) it does not say again."""

    config: Any  # the net's config (a dataclass with ``to_dict``)
    template: str  # the facesets' alignment
    summary: str  # what it trains on, for the log
    record: dict[str, Any]  # the family's own run.json fields (age_range, held_out, paired)
    new: Callable[[], N]  # a fresh net
    load: Callable[[Path, torch.device], tuple[N, dict[str, Any]]]  # a run's checkpoint
    stepper: Callable[[N, torch.optim.Optimizer, torch.Generator], Stepper]
    betas: tuple[float, float]
    started: Callable[[N, str], str] | None = None  # a new run's first act; the command kept


def _plan_df(src: Path, dst: Path, opts: TrainOptions, device: torch.device) -> Plan[AgeNet]:
    """An agecast-df run's part: its facesets (held-out footage faces, pairs, ages) and net."""
    src_set, dst_set = Faceset.load(src), Faceset.load(dst)
    data = _prepare(src_set, dst_set, opts.resolution, opts.age)
    config = ModelConfig(
        resolution=opts.resolution,
        encoder_dims=opts.encoder_dims,
        decoder_dims=opts.decoder_dims,
        age=data.age_range is not None,
    )

    def stepper(net: AgeNet, opt: torch.optim.Optimizer, gen: torch.Generator) -> Stepper:
        return _stepper(net, data, opts, gen, device), lambda: preview_grid(net, data, device)

    ages = f", ages {data.age_range[0]:g}–{data.age_range[1]:g}" if data.age_range else ""
    return Plan(
        config,
        dst_set.template,
        f"{len(data.src)} src, {len(data.dst)} dst ({len(data.held_out)} held out) faces at "
        f"{opts.resolution}px{ages}{', paired' if data.pairs is not None else ''}",
        {
            "age_range": list(data.age_range) if data.age_range else None,
            "held_out": data.held_out.files,
            "paired": data.pairs is not None,
        },
        lambda: AgeNet(config),
        load_checkpoint,
        stepper,
        betas=(0.5, 0.999),
    )


def train(src: Path, dst: Path, run: Path, options: TrainOptions, **how: Unpack[How]) -> RunRecord:
    """Train (or resume) the agecast-df run in ``run``; returns its record (:func:`train_run`)."""
    return train_run(DF, _plan_df, src, dst, run, options, **how)


def train_run(
    family: str,
    plan: Callable[[Path, Path, RunOpts, torch.device], Plan[N]],
    src: Path,
    dst: Path,
    run: Path,
    options: RunOpts,
    **how: Unpack[How],
) -> RunRecord:
    """Train (or resume) a run of ``family`` in ``run``; returns its record. Checkpoints every
    ``save_every`` steps and at the end, so an interrupted run loses at most that much."""
    resume = how.get("resume", False)
    device, opts = begin(run, src, dst, options, resume, family)
    made = plan(src, dst, opts, device)
    gen = torch.Generator().manual_seed(opts.seed)
    torch.manual_seed(opts.seed)
    if resume:
        record = RunRecord.load(run)
        net, state = checked_checkpoint(run, made.load(run, device), made.config)
    else:
        run.mkdir(parents=True, exist_ok=True)
        net, state = made.new().to(device), {}
        command = how.get("command", "")
        if made.started is not None:
            command = made.started(net, command)
        record = RunRecord.new(
            src, dst, made.template, opts, made.config, device, command=command, family=family,
            **made.record,
        )  # fmt: skip
    opt = torch.optim.AdamW(net.parameters(), lr=opts.lr, betas=made.betas, weight_decay=0.0)
    restore(opt, gen, state)
    log.info("training %s (%s): %s on %s", run, family, made.summary, device)
    net.train()
    one_step, preview = made.stepper(net, opt, gen)
    fit(
        run,
        record,
        opt,
        one_step,
        lambda step: save_checkpoint(run, net, opt, step, gen, family),
        preview,
        Loop(opts.steps, opts.save_every, opts.preview_every, opts.log_every, opts.minutes),
        how.get("on_progress"),
        how.get("should_stop"),
    )
    return record


@dataclass(frozen=True, slots=True)
class Loop:
    """When a training loop stops, saves, previews and logs."""

    steps: int
    save_every: int
    preview_every: int
    log_every: int
    minutes: float | None


def fit(
    run: Path,
    record: RunRecord,
    opt: torch.optim.Optimizer,
    one_step: Step,
    save: Callable[[int], None],
    preview: Callable[[], np.ndarray],
    loop: Loop,
    on_progress: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> None:
    """The training loop every family shares: ``one_step(step)`` gives the loss (and its parts)
    of the next batch; this backpropagates, keeps the history, reports progress, writes a
    preview every ``preview_every`` and a checkpoint (``save``) every ``save_every`` steps, stops
    at ``steps``, ``minutes``, ``should_stop`` or Ctrl-C — and always keeps what was learnt."""
    step = record.step
    (run / "previews").mkdir(exist_ok=True)
    t0 = time.perf_counter()
    window: list[float] = []
    last_save = step
    started = time.monotonic()
    budget_s = loop.minutes * 60 if loop.minutes else math.inf
    interrupted = False

    def keep() -> None:
        nonlocal t0
        record.seconds += time.perf_counter() - t0
        t0 = time.perf_counter()
        record.step = step
        save(step)
        record.save(run)

    try:
        while step < loop.steps:
            if should_stop is not None and should_stop():
                break
            if time.monotonic() - started >= budget_s:
                log.info("--minutes %g reached at step %d: stopping", loop.minutes, step)
                break
            loss, losses = one_step(step)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            total = loss.item()
            if not math.isfinite(total):
                raise TrainError(
                    f"loss became {total} at step {step}; lower --lr and resume from the last "
                    "checkpoint"
                )
            window.append(total)
            elapsed = time.perf_counter() - t0
            rate = (step - record.step) / elapsed if elapsed > 0 else 0.0
            if on_progress is not None:
                on_progress(Progress(step, loop.steps, {"total": total, **losses}, rate))
            if step % 25 == 0 or step == loop.steps:
                record.history.append({"step": float(step), "loss": float(np.mean(window))})
                window = []
            if loop.log_every and step % loop.log_every == 0:
                log.info("step %d/%d loss %.4f, %.2f steps/s", step, loop.steps, total, rate)
            if step % loop.preview_every == 0 or step == loop.steps:
                Image.fromarray(preview()).save(run / "previews" / f"step_{step:06d}.png")
            if step - last_save >= loop.save_every or step == loop.steps:
                keep()
                last_save = step
    except KeyboardInterrupt:
        interrupted = True  # Ctrl-C: keep what was learnt, below
    if step != record.step or not (run / CHECKPOINT).exists():
        keep()
    log.info(
        "run %s %s at step %d (%.0f s of training)",
        run,
        "interrupted, saved" if interrupted else "saved",
        record.step,
        record.seconds,
    )
