"""The leaderboard: every recipe of examples/recipes/ and every baseline, on three corpora, on
VAL, near-OOD and far-OOD, over several seeds, with paired bootstrap intervals over articles.

    python benchmarks/leaderboard.py                       # train what is missing, score, write tables
    python benchmarks/leaderboard.py --corpora demo --recipes best_amn,frame_weights --seeds 0,1,2
    python benchmarks/leaderboard.py --score-only          # only score the runs that exist

Corpora (the potion stores come from benchmarks/build_benchmark_data.sh potion-base-8m and
`lvm-workbench data build --reader debian-doc --source git-doc --embedder potion-base-8m`):

    demo       examples/data/python-docs-minilm; near-OOD: none; far-OOD: examples/data/kjv-minilm
    benchmark  in-dist-potion-base-8m; near-OOD: near-ood-potion-base-8m (PostgreSQL manual); far-OOD: far-ood (KJV)
    gitdoc     git-doc-potion-base-8m (a Debian package the recipes never saw); near-OOD and far-OOD as benchmark

Each recipe runs once per seed, the seed setting both the model seed and the split seed, into
runs/recipes-<corpus>/<recipe>/seed<N> (benchmarks/run_recipes.py uses the same folders, so its
runs are reused; a run cut short, by a kill or Ctrl-C, is continued with `--resume`). Scoring
reads each run's last checkpoint and split.json: ridge and frame weights are fitted on that
run's train part (lvm_core/models/fitted.py), every predictor is scored on the same spread
samples of each split (the trainer's VAL sample; 1000 windows of each OOD store), and per-sample
cosines are pooled over the seeds into one paired bootstrap interval per comparison
(lvm_core/evaluation/bootstrap.py; an article seen by several seeds is one cluster). Output:
runs/leaderboard/leaderboard.md and .json. Nothing here is timed.

Settings for a shared CPU (each is written into every plan copy and into the board): training
runs one at a time with torch threads 1 (`--threads`), without the 5CAT battery (the board
scores its own samples; `--keep-gates` keeps it), and `--max-epochs CORPUS=N` shortens the
recipes on a large corpus: epochs capped at N and every schedule epoch scaled by the same
factor, so a loss that switches on at epoch 4 of 12 switches on at epoch 1 of 3. Default:
benchmark=1: its train part (about 26,000 windows) is 6x the demo's, so one epoch is about
400 steps, and 24 runs of it fit in an hour of a shared 2-core machine; every schedule then
starts at epoch 1 (P4's rollout and guards, V3's guards train from the first step).
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import tomli_w

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_recipes import RECIPES, ROOT, cache_dir, seeded_plan  # noqa: E402

BASELINES = ("copy_last", "context_mean", "ridge", "frame_weights")
SPLITS = ("val", "near_ood", "far_ood")
SAMPLES = 1000
MAX_EPOCHS = "benchmark=1"


def corpora(bench: Path) -> dict[str, dict[str, Path | None]]:
    data = ROOT / "examples" / "data"
    emb = "potion-base-8m"
    return {
        "demo": {"store": data / "python-docs-minilm", "near_ood": None, "far_ood": data / "kjv-minilm"},
        "benchmark": {"store": bench / f"in-dist-{emb}", "near_ood": bench / f"near-ood-{emb}",
                      "far_ood": bench / f"far-ood-{emb}"},
        "gitdoc": {"store": bench / f"git-doc-{emb}", "near_ood": bench / f"near-ood-{emb}",
                   "far_ood": bench / f"far-ood-{emb}"},
    }


def shortened(plan: dict, max_epochs: int | None) -> dict:
    """The plan with at most `max_epochs` epochs, every schedule's epoch keys scaled by the same
    factor (rounded half up, at least 1, a linear schedule's end kept after its start)."""
    plan = json.loads(json.dumps(plan))
    epochs = int(plan.get("train", {}).get("epochs", 1))
    if max_epochs is None or epochs <= max_epochs:
        return plan
    plan["train"]["epochs"] = max_epochs

    def scale(e: int) -> int:
        return max(1, math.floor(e * max_epochs / epochs + 0.5))

    for loss in plan.get("loss", []):
        sched = loss.get("schedule")
        if isinstance(sched, dict):
            for key in [k for k in sched if k.endswith("epoch")]:
                sched[key] = scale(int(sched[key]))
            if "start_epoch" in sched and "end_epoch" in sched:
                sched["end_epoch"] = max(sched["end_epoch"], sched["start_epoch"] + 1)
    return plan


def board_plan(plan: dict, recipe: Path, seed: int, paths: dict, settings: dict) -> dict:
    """The recipe as the board trains it: seeded (model and split), pointed at the corpus, with
    the board's thread count, epoch cap and (unless kept) no 5CAT battery."""
    plan = shortened(seeded_plan(plan, recipe, seed), settings.get("max_epochs"))
    plan["data"]["store"] = str(paths["store"])
    plan["data"]["ood"] = str(paths["near_ood"] or paths["far_ood"])
    plan["train"]["threads"] = settings["threads"]
    if not settings["gates"]:
        plan.pop("gates", None)
    return plan


def parse_max_epochs(text: str) -> dict[str, int]:
    """"benchmark=3,gitdoc=8" -> {"benchmark": 3, "gitdoc": 8}; exit 2 with one line otherwise."""
    out: dict[str, int] = {}
    for item in filter(None, text.split(",")):
        name, _, n = item.partition("=")
        if not n.strip().isdigit() or int(n) < 1:
            print(f"--max-epochs: expected CORPUS=N with N >= 1, got {item!r}", file=sys.stderr)
            raise SystemExit(2)
        out[name.strip()] = int(n)
    return out


def train_missing(corpus: str, paths: dict, recipes: list[str], seeds: list[int], out: Path,
                  settings: dict) -> list[Path]:
    """Run each (recipe, seed) that has no completed run yet, one at a time, resuming a run that
    was cut short (`--resume`: a kill at any point resumes, before the first checkpoint from
    step 0); returns the completed run dirs."""
    lvm = str(Path(sys.executable).with_name("lvm-workbench"))
    done = []
    for seed in seeds:  # seed-major: a board cut short still has every recipe at the first seeds
        for name in recipes:
            recipe = RECIPES / f"{name}.toml"
            run_dir = out / name / f"seed{seed}"
            info = run_dir / "run.json"
            if info.is_file() and json.loads(info.read_text()).get("status") == "completed":
                done.append(run_dir)
                continue
            if run_dir.exists():  # cut short (killed, stopped, failed): continue it where it stopped
                cmd = [lvm, "--resume", str(run_dir)]
            else:
                plan = board_plan(tomllib.loads(recipe.read_text()), recipe, seed, paths, settings)
                plan_path = out / "plans" / f"{name}-s{seed}.toml"
                plan_path.parent.mkdir(parents=True, exist_ok=True)
                plan_path.write_text(tomli_w.dumps(plan))
                cmd = [lvm, "--run", str(plan_path), "--run-dir", str(run_dir)]
            print("$", *cmd, flush=True)
            rc = subprocess.run(cmd, stdout=subprocess.DEVNULL).returncode
            if rc in (0, 3):
                done.append(run_dir)
            else:
                print(f"{run_dir}: exit {rc}", file=sys.stderr)
    return done


class Scorer:
    """Per-sample cosines of a run's model and of the baselines fitted on its train part."""

    def __init__(self, paths: dict) -> None:
        from lvm_core.data.store import ArticleStore
        from workbench.plugin_host import load_plugins

        self.paths, self.host = paths, load_plugins()
        self.stores = {k: ArticleStore.open(v) for k, v in paths.items() if v is not None}
        self.fits: dict[tuple[str, int], object] = {}

    def samples(self, split: str, parts, seed: int, context_len: int):
        from lvm_core.evaluation.battery import spread_sample
        from lvm_core.data.windows import make_windows

        store = self.stores["store" if split == "val" else split]
        positions = parts.positions(store, "val") if split == "val" else None
        w = make_windows(store, positions, context_len)
        keep = spread_sample(store, w.target_rows, SAMPLES, seed)
        return w.subset(np.searchsorted(w.target_rows, keep))

    def baseline_scores(self, parts, seed: int, context_len: int = 5) -> dict[str, dict[str, np.ndarray]]:
        """Per split: the samples' windows, article ids and each baseline's per-sample cos, for
        the split `parts` (train/val articles) and `seed`; ridge and frame weights fitted on its
        train part. Cached: every recipe with this seed shares them."""
        from lvm_core.models import baselines as base
        from lvm_core.evaluation.paired_eval import per_sample_cos
        from lvm_core.data.store import l2_normalize
        from lvm_core.training.validation import fit_eval_baselines
        from lvm_core.data.windows import make_windows

        key = (parts.sha256(), seed, context_len)
        if key not in self.fits:
            store = self.stores["store"]
            fitted = fit_eval_baselines(make_windows(store, parts.positions(store, "train"), context_len), seed)
            predictors = {"copy_last": base.copy_last, "context_mean": base.context_mean, **fitted.predictors}
            out = {}
            for split in SPLITS:
                if split != "val" and self.paths[split] is None:
                    continue
                w = self.samples(split, parts, seed, context_len)
                ctx, tgt = w.batch()
                t = l2_normalize(tgt).astype(np.float64)
                row = {"windows": w, "target": t,
                       "article_id": np.asarray(w.store.article_ids)[w.store.row_article[w.target_rows]]}
                for b, fn in predictors.items():
                    row[b] = per_sample_cos(fn(ctx), t)
                out[split] = row
            self.fits[key] = out
        return self.fits[key]

    def score(self, run_dir: Path) -> dict[str, dict[str, np.ndarray]]:
        import torch

        from lvm_core.training.checkpoint import load_model
        from lvm_core.evaluation.paired_eval import per_sample_cos
        from lvm_core.training.validation import predict
        from lvm_core.data.windows import Split

        info = json.loads((run_dir / "run.json").read_text())
        seed = int(info.get("seed", 0))
        model = load_model(run_dir / "checkpoints" / "last.safetensors", lambda a: self.host.get("model", a).obj)
        L = int(model.checkpoint_meta["context_len"])
        out = {}
        for split, row in self.baseline_scores(Split.load(run_dir / "split.json"), seed, L).items():
            out[split] = {**row, "model": per_sample_cos(predict(model, row["windows"], torch.device("cpu")), row["target"])}
        return out

    def baselines_only(self, seeds: list[int]) -> dict:
        """cos mean +- sd over seeds of each baseline, on the recipes' split rule (80/20 by
        article, split seed = seed), whether or not any recipe ran."""
        from lvm_core.data.windows import split_by_fractions

        store = self.stores["store"]
        scores = [self.baseline_scores(split_by_fractions(store, {"train": 0.8, "val": 0.2}, seed=s), s) for s in seeds]
        out = {}
        for split in SPLITS:
            runs = [sc[split] for sc in scores if split in sc]
            if runs:
                out[split] = {"seeds": len(runs), "cos": {b: _mean_sd([r[b].mean() for r in runs]) for b in BASELINES}}
        return out


def _mean_sd(v) -> dict:
    v = np.asarray(v, dtype=np.float64)
    return {"mean": float(v.mean()), "sd": float(v.std(ddof=1)) if len(v) > 1 else 0.0}


def summarise(scores: list[dict[str, dict[str, np.ndarray]]]) -> dict:
    """Per split: mean +- sd across seeds of each predictor's cos; the model's gain over each
    baseline with one paired interval pooled over the seeds."""
    from lvm_core.evaluation.bootstrap import paired_intervals

    out: dict = {}
    for split in SPLITS:
        runs = [s[split] for s in scores if split in s]
        if not runs:
            continue
        res: dict = {"seeds": len(runs), "cos": {}, "gain": {}}
        for p in ("model", *BASELINES):
            res["cos"][p] = _mean_sd([r[p].mean() for r in runs])
        ids = np.concatenate([r["article_id"] for r in runs])
        diffs = np.stack([np.concatenate([r["model"] - r[b] for r in runs]) for b in BASELINES])
        for b, iv in zip(BASELINES, paired_intervals(diffs, ids)):
            per_seed = [float((r["model"] - r[b]).mean()) for r in runs]
            res["gain"][b] = {"mean": iv.mean, "lo": iv.lo, "hi": iv.hi, "seeds_above": sum(g > 0 for g in per_seed),
                              "within_noise": bool(iv.within_noise or len({g > 0 for g in per_seed}) > 1)}
        res["beats_all"] = all(res["gain"][b]["lo"] > 0 for b in BASELINES)
        out[split] = res
    return out


def _pm(c: dict) -> str:
    return f"{c['mean']:.3f} ± {c['sd']:.3f}"


def _iv(g: dict) -> str:
    if not math.isfinite(g["lo"]):
        return "n/a"
    mark = "" if g["within_noise"] else (" **+**" if g["lo"] > 0 else " −")
    return f"{g['mean']:+.3f} [{g['lo']:+.3f}, {g['hi']:+.3f}]{mark}"


def run_settings(run_dir: Path) -> dict:
    """What one run trained with, from its own plan copy: epochs, torch threads, 5CAT battery."""
    plan = tomllib.loads((run_dir / "plan.toml").read_text())
    return {"epochs": int(plan.get("train", {}).get("epochs", 1)), "threads": plan.get("train", {}).get("threads"),
            "gates": "gates" in plan}


def settings_line(by_recipe: dict[str, list[dict]]) -> str:
    """The settings the board's runs were trained with, as run (older runs may differ from the
    settings this script gives new ones): each recipe's epochs, and the thread counts and 5CAT
    batteries over all runs."""
    runs = [r for rs in by_recipe.values() for r in rs]
    if not runs:
        return "Settings: no runs."

    def counts(key: str, fmt) -> str:
        values = sorted({r[key] for r in runs}, key=str)
        return ", ".join(f"{fmt(v)} ({sum(r[key] == v for r in runs)} runs)" for v in values)

    epochs = ", ".join(f"`{r}` {'/'.join(str(e) for e in sorted({x['epochs'] for x in rs}))}"
                       for r, rs in sorted(by_recipe.items()))
    return (f"Settings, as run: epochs {epochs}; torch threads {counts('threads', str)}; "
            f"{counts('gates', lambda g: '5CAT battery after training' if g else 'no 5CAT battery')}.")


def beats(g: dict) -> str:
    """The verdict on one gain: beyond noise above, below, or within noise."""
    if not math.isfinite(g["lo"]):
        return "n/a"
    if g["within_noise"]:
        return "no: within noise"
    return "**yes**, beyond noise" if g["lo"] > 0 else "no: below, beyond noise"


def answer_table(board: dict) -> str:
    """Per corpus and split: ridge, the trained model with the best mean cos, its gain over
    ridge with the pooled interval, and the verdict: the issue's question in one table."""
    lines = ["| corpus | split | ridge cos | best trained model (cos) | its gain over ridge | beats ridge? | "
             "any trained model beats ridge? |", "|---|---|---|---|---|---|---|"]
    for corpus, by_recipe in board.items():
        for split in SPLITS:
            rows = {r: s[split] for r, s in by_recipe.items() if not r.startswith("_") and split in s}
            if not rows:
                continue
            best, res = max(rows.items(), key=lambda kv: kv[1]["cos"]["model"]["mean"])
            winners = sorted(r for r, v in rows.items() if beats(v["gain"]["ridge"]).startswith("**yes"))
            g = res["gain"]["ridge"]
            label = split.replace("_", "-").upper() if split != "val" else "VAL"
            lines.append(f"| {corpus} | {label} | {_pm(res['cos']['ridge'])} | `{best}` ({_pm(res['cos']['model'])}) | "
                         f"{_iv(g)} | {beats(g)} | {', '.join(f'`{w}`' for w in winners) or 'none'} |")
    return "\n".join(lines) + "\n"


def markdown(board: dict) -> str:
    lines = []
    for corpus, by_recipe in board.items():
        base = by_recipe.get("_baselines", {})
        lines += [f"### {corpus}", "", settings_line(by_recipe.get("_runs", {})), ""]
        for split in SPLITS:
            rows = {r: s[split] for r, s in by_recipe.items() if not r.startswith("_") and split in s}
            if split not in base:
                continue
            seeds = sorted({str(v["seeds"]) for v in rows.values()}) or ["none trained"]
            lines += [f"**{split.replace('_', '-').upper() if split != 'val' else 'VAL'}** (baselines: {base[split]['seeds']} "
                      f"split seeds, ridge and frame weights fitted per seed on its train part; seeds per recipe row: "
                      f"{', '.join(seeds)})",
                      "",
                      "| model | cos (mean ± sd over seeds) | gain vs ridge [95% paired interval] | gain vs frame weights | "
                      "gain vs context mean | beats every baseline |",
                      "|---|---|---|---|---|---|"]
            for b in BASELINES:
                lines.append(f"| *{b.replace('_', ' ')}* | {_pm(base[split]['cos'][b])} | | | | |")
            for r, s in sorted(rows.items(), key=lambda kv: -kv[1]["cos"]["model"]["mean"]):
                lines.append(f"| `{r}` | {_pm(s['cos']['model'])} | {_iv(s['gain']['ridge'])} | "
                             f"{_iv(s['gain']['frame_weights'])} | {_iv(s['gain']['context_mean'])} | "
                             f"{'**yes**' if s['beats_all'] else 'no'} |")
            lines.append("")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpora", default="demo,benchmark,gitdoc")
    ap.add_argument("--recipes", default="", help="comma-separated recipe names (default: all)")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--score-only", action="store_true", help="score the runs that exist; train nothing")
    ap.add_argument("--train-only", action="store_true", help="train what is missing; score nothing")
    ap.add_argument("--bench-dir", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "leaderboard")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per training run (default 1)")
    ap.add_argument("--max-epochs", default=MAX_EPOCHS, help=f"CORPUS=N,... epoch caps (default {MAX_EPOCHS}; '' for none)")
    ap.add_argument("--keep-gates", action="store_true", help="keep each recipe's 5CAT battery after training")
    args = ap.parse_args()
    recipes = [r for r in args.recipes.split(",") if r] or sorted(p.stem for p in RECIPES.glob("*.toml"))
    seeds = [int(s) for s in args.seeds.split(",")]
    caps = parse_max_epochs(args.max_epochs)
    all_corpora = corpora(args.bench_dir or cache_dir())
    board: dict = {}
    notes: dict[str, list[str]] = {}
    for corpus in args.corpora.split(","):
        paths = all_corpora[corpus]
        missing = [str(p) for p in paths.values() if p is not None and not Path(p).is_dir()]
        if missing:
            print(f"{corpus}: missing {', '.join(missing)} (see this script's docstring); skipped", file=sys.stderr)
            continue
        out = ROOT / "runs" / f"recipes-{corpus}"
        settings = {"threads": args.threads, "max_epochs": caps.get(corpus), "gates": args.keep_gates}
        if not args.score_only:
            train_missing(corpus, paths, recipes, seeds, out, settings)
        if args.train_only:
            continue
        scorer = Scorer(paths)
        print(f"scoring {corpus}: baselines over seeds {seeds}", flush=True)
        board[corpus] = {"_baselines": scorer.baselines_only(seeds), "_runs": {}}
        for r in recipes:
            runs = [out / r / f"seed{s}" for s in seeds]
            runs = [d for d in runs if (d / "checkpoints" / "last.safetensors").is_file()
                    and json.loads((d / "run.json").read_text()).get("status") == "completed"]
            if runs:
                print(f"scoring {corpus}/{r}: {len(runs)} seed(s)", flush=True)
                board[corpus][r] = summarise([scorer.score(d) for d in runs])
                board[corpus]["_runs"][r] = [run_settings(d) for d in runs]
            if len(runs) < len(seeds):
                notes.setdefault(corpus, []).append(f"{r}: {len(runs)} of {len(seeds)} seeds completed")
    if args.train_only:
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "leaderboard.json").write_text(json.dumps({"board": board, "incomplete": notes}, indent=1))
    text = "**Does any trained model beat ridge?** (best trained model per split; gain pooled over the seeds)\n\n" + \
        answer_table(board) + "\n" + markdown(board)
    if notes:
        text += "\n**Incomplete** (not in the tables above, or with fewer seeds):\n\n" + "".join(
            f"- {corpus}: {'; '.join(n)}\n" for corpus, n in notes.items())
    (args.out / "leaderboard.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
