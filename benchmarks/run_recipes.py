"""Run the recipes of examples/recipes/ on the bundled demo data or the benchmark dataset, then
compare them: `lvm-workbench runs compare` for validation and OOD, plus the far-OOD store (which a
plan cannot hold beside the near-OOD one) scored here with the trainer's own metric code.

    python benchmarks/run_recipes.py                         # every recipe on the demo data
    python benchmarks/run_recipes.py --data benchmark p1_mse best_amn
    python benchmarks/run_recipes.py --data benchmark --embedder minilm

Benchmark mode rewrites only [data] of each plan: store = in-dist-<embedder>, ood =
near-ood-<embedder> (from benchmarks/build_benchmark_data.sh), and scores far-ood-<embedder>
after training. The rewritten plan is kept as OUT/plans/<recipe>.toml and in each run directory.
Nothing here is timed: each run's wall time is the trainer's own (run.json).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import tomli_w

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "examples" / "recipes"


def cache_dir() -> Path:
    base = os.environ.get("LVM_WORKBENCH_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "lvm-workbench")
    return Path(base) / "benchmark"


def benchmark_plan(recipe: Path, bench: Path, embedder: str) -> dict:
    """The recipe with [data] pointed at the benchmark stores (absolute paths)."""
    plan = tomllib.loads(recipe.read_text())
    for part in ("in-dist", "near-ood", "far-ood"):
        if not (bench / f"{part}-{embedder}").is_dir():
            sys.exit(f"{bench / f'{part}-{embedder}'}: missing; build it with "
                     f"benchmarks/build_benchmark_data.sh {embedder}")
    plan["data"]["store"] = str(bench / f"in-dist-{embedder}")
    plan["data"]["ood"] = str(bench / f"near-ood-{embedder}")
    plan["name"] = f"{plan['name']}-bench"
    return plan


def seeded_plan(plan: dict, recipe: Path, seed: int) -> dict:
    """The plan with its model seed and split seed both set to `seed`, data paths absolute (the
    copy lives elsewhere), and the seed in its name."""
    plan = json.loads(json.dumps(plan))
    for key in ("store", "ood"):
        if key in plan["data"]:
            plan["data"][key] = str((recipe.parent / plan["data"][key]).resolve())
    plan["seed"] = seed
    plan["data"].setdefault("split", {})["seed"] = seed
    plan["name"] = f"{plan['name']}-s{seed}"
    return plan


def far_ood_metrics(run_dir: Path, store_dir: Path, max_samples: int, seed: int) -> dict[str, dict[str, float]]:
    """cos, margin_vs_last and R@5_article of the run's last checkpoint and of copy-last / context-mean on a
    spread sample of every window of `store_dir` (the same code the trainer validates with)."""
    import torch

    from lvm_core.models import baselines
    from lvm_core.training.checkpoint import load_model
    from lvm_core.evaluation.battery import spread_sample
    from lvm_core.data.store import ArticleStore
    from lvm_core.training.validation import predict, split_metrics
    from lvm_core.data.windows import make_windows
    from workbench.plugin_host import load_plugins

    host = load_plugins()
    model = load_model(run_dir / "checkpoints" / "last.safetensors", lambda arch: host.get("model", arch).obj)
    store = ArticleStore.open(store_dir)
    windows = make_windows(store, None, int(model.checkpoint_meta["context_len"]))
    keep = spread_sample(store, windows.target_rows, max_samples, seed)
    windows = windows.subset(np.searchsorted(windows.target_rows, keep))
    preds = {"model": predict(model, windows, torch.device("cpu"))}
    ctx, _ = windows.batch()
    for name in ("copy_last", "context_mean"):
        preds[name] = baselines.BASELINES[name](ctx)
    out = {}
    for name, pred in preds.items():
        m = split_metrics("x", windows, pred)
        out[name] = {k: m[f"x/{k}"] for k in ("cos", "margin_vs_last", "R@5_article", "chance_R@5_article")}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("recipes", nargs="*", help="recipe names (file stems); default: all")
    ap.add_argument("--data", choices=("demo", "benchmark"), default="demo")
    ap.add_argument("--embedder", default="potion-base-8m", help="benchmark stores' embedder suffix")
    ap.add_argument("--bench-dir", type=Path, default=None, help="default: the build script's cache folder")
    ap.add_argument("--out", type=Path, default=None, help="default: runs/recipes-<data>")
    ap.add_argument("--seeds", default="", help="comma-separated seeds: one run per recipe and seed, each seed "
                                                 "setting both the model seed and the split seed (OUT/<recipe>/seed<N>)")
    args = ap.parse_args()

    names = args.recipes or sorted(p.stem for p in RECIPES.glob("*.toml"))
    out = args.out or ROOT / "runs" / f"recipes-{args.data}"
    bench = args.bench_dir or cache_dir()
    lvm = str(Path(sys.executable).with_name("lvm-workbench"))
    run_dirs, far = [], {}
    seeds = [int(x) for x in args.seeds.split(",") if x.strip()] or [None]
    jobs = [(name, seed) for name in names for seed in seeds]
    for name, seed in jobs:
        recipe = RECIPES / f"{name}.toml"
        if not recipe.is_file():
            sys.exit(f"{recipe}: no such recipe")
        plan_path = recipe
        plan = benchmark_plan(recipe, bench, args.embedder) if args.data == "benchmark" else tomllib.loads(recipe.read_text())
        if seed is not None:
            plan = seeded_plan(plan, recipe, seed)
        if args.data == "benchmark" or seed is not None:
            plan_path = out / "plans" / (f"{name}.toml" if seed is None else f"{name}-s{seed}.toml")
            plan_path.parent.mkdir(parents=True, exist_ok=True)
            plan_path.write_text(tomli_w.dumps(plan))
        run_dir = out / name if seed is None else out / name / f"seed{seed}"
        if run_dir.exists() and (run_dir / "run.json").exists():
            status = json.loads((run_dir / "run.json").read_text()).get("status")
            if status == "completed":
                print(f"{name}: already completed in {run_dir} (delete it to rerun)")
                run_dirs.append(run_dir)
            else:
                print(f"{name}: {run_dir} holds a {status} run; resume it with lvm-workbench --resume {run_dir}, "
                      "or delete it")
                continue
        else:
            cmd = [lvm, "--run", str(plan_path), "--run-dir", str(run_dir)]
            print("$", " ".join(cmd), flush=True)
            rc = subprocess.run(cmd).returncode
            if rc not in (0, 3):  # 3: a failed gate battery or a stop tripwire; the run is still there
                print(f"{name}: exit {rc}", file=sys.stderr)
                continue
            run_dirs.append(run_dir)
        if args.data == "benchmark":
            plan = tomllib.loads(plan_path.read_text())
            far[name if seed is None else f"{name}-s{seed}"] = far_ood_metrics(run_dir, bench / f"far-ood-{args.embedder}",
                                        plan.get("eval", {}).get("max_samples", 2000), plan.get("seed", 0))
    if not run_dirs:
        return 1
    compare = [lvm, "runs", "compare", *map(str, run_dirs), "--markdown", str(out / "compare.md"),
               "--csv", str(out / "compare.csv")]
    print("$", " ".join(compare), flush=True)
    subprocess.run(compare, check=False)
    if far:
        lines = ["| recipe | far-OOD cos | margin_vs_last | R@5_article (chance) | copy-last cos | context-mean cos |",
                 "|---|---|---|---|---|---|"]
        for name, m in far.items():
            lines.append(f"| {name} | {m['model']['cos']:.3f} | {m['model']['margin_vs_last']:+.3f} | "
                         f"{m['model']['R@5_article']:.3f} ({m['model']['chance_R@5_article']:.3f}) | "
                         f"{m['copy_last']['cos']:.3f} | {m['context_mean']['cos']:.3f} |")
        text = "\n".join(lines) + "\n"
        (out / "far_ood.md").write_text(text)
        (out / "far_ood.json").write_text(json.dumps(far, indent=1))
        print(f"\nfar-OOD ({bench / f'far-ood-{args.embedder}'}), last checkpoints:\n{text}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
