"""Checkpoint generations: weights, training state and metadata written as one unit.

    checkpoints/
      gen-000007-step-120-last/   model.safetensors + model.state.pt, written in a temporary
                                  folder (.gen-...tmp) and renamed into place: complete or absent
      last.safetensors            the newest `last` weights (a hard link into its generation),
      best.safetensors            the best ones; each replaced atomically, for tools (5cat --model)

A new generation is complete before anything older is removed; the two newest `last`
generations and the newest `best` one are kept. Resume takes the newest complete generation
(`--from last`), the best one, or a step (`--from step-N`); a run with none starts again at
step 0. Run folders from before generations (checkpoints/last.safetensors + last.state.pt)
still resume.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from torch import nn

from ..atomic import fsync_dir, fsync_tree, remove_temporaries, temp_name
from .checkpoint import STATE_SUFFIX, WEIGHTS_SUFFIX, load_state, load_weights, read_checkpoint_meta, save_checkpoint
from ..errors import InputError
from ..faults import write_point

_GEN = re.compile(r"^gen-(\d{6})-step-(\d+)-(last|best)$")
KEEP_LAST = 2
TAGS = ("last", "best")


@dataclass(frozen=True)
class Generation:
    """One complete checkpoint: `stem` + .safetensors / .state.pt (legacy ones have seq -1)."""

    seq: int
    step: int
    tag: str
    stem: Path

    @property
    def name(self) -> str:
        return self.stem.parent.name if self.seq >= 0 else self.stem.name

    def state(self) -> dict[str, Any]:
        return load_state(self.stem)

    def weights(self, device: Any = "cpu") -> dict[str, Any]:
        return load_weights(self.stem, device=device)


class Checkpointer:
    """Writes and finds the generations of one run's checkpoints/ folder."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)

    # ---- finding -------------------------------------------------------------------------
    def generations(self) -> list[Generation]:
        """Complete generations, oldest first (a temporary folder is never one)."""
        out = []
        if self.folder.is_dir():
            for p in self.folder.iterdir():
                m = _GEN.match(p.name)
                if m and p.is_dir():
                    out.append(Generation(int(m[1]), int(m[2]), m[3], p / "model"))
        return sorted(out, key=lambda g: g.seq)

    def legacy(self, tag: str = "last") -> Generation | None:
        """A checkpoint of the layout before generations (<tag>.safetensors + <tag>.state.pt)."""
        stem = self.folder / tag
        if stem.with_name(tag + STATE_SUFFIX).is_file() and stem.with_name(tag + WEIGHTS_SUFFIX).is_file():
            return Generation(-1, int(read_checkpoint_meta(stem).get("step", 0)), tag, stem)
        return None

    def pick(self, which: str = "last") -> Generation | None:
        """The generation to resume from: "last" (newest), "best", or "step-N".

        None means no checkpoint at all for "last" (start again at step 0); for "best" and
        "step-N" a missing one is bad input. A newest generation that cannot be read is
        skipped for an older one (its problem is raised when there is none)."""
        gens = self.generations()
        if which == "last":
            cands = [g for g in reversed(gens) if g.tag == "last"]
            legacy = self.legacy("last")
            if legacy is not None and not gens:
                cands.append(legacy)
            first_problem: InputError | None = None
            for g in cands:
                try:
                    g.state()
                    g.weights()
                    return g
                except InputError as exc:
                    first_problem = first_problem or exc
            if first_problem is not None:
                raise first_problem
            return None
        if which == "best":
            cands = [g for g in gens if g.tag == "best"] or [g for g in [self.legacy("best")] if g]
            if not cands:
                raise InputError(str(self.folder), "no best checkpoint to resume from", "--from best")
            return cands[-1]
        m = re.fullmatch(r"step-(\d+)", which)
        if not m:
            raise InputError("--from", f"expected last, best or step-N, got {which!r}")
        cands = [g for g in gens if g.step == int(m[1])]
        if not cands:
            have = ", ".join(f"step-{g.step}" for g in gens) or "none"
            raise InputError(str(self.folder), f"no checkpoint at step {m[1]} (kept: {have})", "--from")
        return cands[-1]

    # ---- writing -------------------------------------------------------------------------
    def save(self, tag: str, model: nn.Module, meta: Mapping[str, Any], state: Mapping[str, Any]) -> Path:
        """Write a complete generation, point `<tag>.safetensors` at it, drop old ones.
        Returns the generation's weights path (its state file lies beside it)."""
        if tag not in TAGS:
            raise ValueError(f"checkpoint tag must be one of {TAGS}, got {tag!r}")
        self.folder.mkdir(parents=True, exist_ok=True)
        gens = self.generations()
        seq = (gens[-1].seq + 1) if gens else 1
        final = self.folder / f"gen-{seq:06d}-step-{int(meta['step'])}-{tag}"
        tmp = temp_name(final)
        os.mkdir(tmp, 0o777)
        try:
            save_checkpoint(tmp / "model", model, {**meta, "generation": final.name}, state)
            fsync_tree(tmp)
            write_point(final)
            os.rename(tmp, final)
            fsync_dir(self.folder)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        self.point(tag, final / "model")
        self.prune()
        return final / ("model" + WEIGHTS_SUFFIX)

    def point(self, tag: str, stem: Path) -> Path:
        """Make `<tag>.safetensors` the weights of `stem` (hard link, atomic replace)."""
        pointer = self.folder / (tag + WEIGHTS_SUFFIX)
        tmp = temp_name(pointer)
        src = stem.with_name(stem.name + WEIGHTS_SUFFIX)
        try:
            try:
                os.link(src, tmp)
            except OSError:  # a file system without hard links: a copy
                shutil.copyfile(src, tmp)
            write_point(pointer)
            os.replace(tmp, pointer)
            fsync_dir(self.folder)
        finally:
            tmp.unlink(missing_ok=True)
        (self.folder / (tag + STATE_SUFFIX)).unlink(missing_ok=True)  # a pre-generation state file
        return pointer

    def prune(self) -> None:
        """Keep the KEEP_LAST newest `last` generations and the newest `best` one."""
        gens = self.generations()
        keep = {g.seq for g in [g for g in gens if g.tag == "last"][-KEEP_LAST:]}
        keep |= {g.seq for g in [g for g in gens if g.tag == "best"][-1:]}
        for g in gens:
            if g.seq not in keep:
                shutil.rmtree(g.stem.parent, ignore_errors=True)

    def rewind(self, to: Generation | None) -> None:
        """Resuming from `to` (None: step 0): generations written after it are dropped and the
        pointers set to what remains, so the next resume cannot mix two histories."""
        remove_temporaries(self.folder)
        if to is not None and to.seq < 0:
            return  # a pre-generation run: its files are the pointers
        limit = to.seq if to is not None else 0
        for g in self.generations():
            if g.seq > limit:
                shutil.rmtree(g.stem.parent, ignore_errors=True)
        if to is None:
            for tag in TAGS:
                for suffix in (WEIGHTS_SUFFIX, STATE_SUFFIX):
                    (self.folder / (tag + suffix)).unlink(missing_ok=True)
            return
        for tag in TAGS:
            mine = [g for g in self.generations() if g.tag == tag]
            if mine:
                self.point(tag, mine[-1].stem)
            else:
                (self.folder / (tag + WEIGHTS_SUFFIX)).unlink(missing_ok=True)
