"""Re-take the PNG screenshots in docs/screenshots/ from the real app on the bundled demo store.

    python docs/screenshots/take.py        (needs rsvg-convert: apt-get install librsvg2-bin)

Trains two tiny runs through the app (each a child process, as a person would), so the Train,
Gates and Runs screens show real numbers; each screen is exported as SVG at 100x30 and
converted to PNG.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from textual.widgets import DataTable, Input, Select

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
DEMO = ROOT / "examples" / "data" / "python-docs-minilm"
SIZE = (100, 30)


def save(app, name: str, tmp: Path) -> None:
    svg = tmp / f"{name}.svg"
    svg.write_text(app.export_screenshot(), encoding="utf-8")
    subprocess.run(["rsvg-convert", "-b", "#1e1e1e", str(svg), "-o", str(HERE / f"{name}.png")], check=True)
    print("wrote", HERE / f"{name}.png")


async def until(cond, timeout: float) -> None:
    end = time.monotonic() + timeout
    while not cond() and time.monotonic() < end:
        await asyncio.sleep(0.1)


async def take(tmp: Path) -> None:
    from workbench.tui.app import WorkbenchApp

    os.chdir(tmp)
    os.environ["LVM_WORKBENCH_STATE_DIR"] = str(tmp / "state")
    app = WorkbenchApp(runs_dir=tmp / "runs")
    app.animation_level = "none"
    async with app.run_test(size=SIZE) as pilot:
        setup = app.setup_pane
        box = setup.query_one("#store-path", Input)
        box.value = str(DEMO)
        await box.action_submit()
        setup.query_one("#model-select", Select).value = "mlp"
        await pilot.pause(0.5)
        for key, value in (("epochs", "4"), ("batch_size", "64"), ("device", "cpu"), ("threads", "1"), ("log_every", "5")):
            setup.query_one(f"#train-{key}", Input).value = value
        setup.query_one("#model-p-hidden_dim", Input).value = "256"
        await pilot.pause(0.5)
        save(app, "setup", tmp)
        await app.action_train()
        await until(lambda: app.train_pane.epochs_shown >= 2, 120)
        await pilot.pause(0.6)
        save(app, "train_running", tmp)
        await until(lambda: not app.training, 120)
        await pilot.pause(0.6)
        save(app, "train", tmp)
        first = Path(app.train_pane.run_dir)
        # a second run with a directional loss, for the Runs comparison
        setup.query_one("#model-p-hidden_dim", Input).value = "512"
        setup.query_one("#loss-on-directional_margin").value = True
        setup.query_one("#train-epochs", Input).value = "3"
        await pilot.pause(0.3)
        await app.action_train()
        await until(lambda: not app.training, 120)
        second = Path(app.train_pane.run_dir)
        app.action_tab("gates")
        await pilot.pause(0.5)
        gates = app.query_one("#gates-pane")
        gates.query_one("#gates-path", Input).value = str(first / "checkpoints" / "best.safetensors")
        gates.query_one("#gates-n", Input).value = "300"
        gates.action_run_gates()
        await until(lambda: gates.doc is not None, 180)
        await pilot.pause(0.6)
        save(app, "gates", tmp)
        app.action_tab("data")
        await pilot.pause(0.5)
        data = app.query_one("#data-pane")
        data.action_diagnose()
        await app.workers.wait_for_complete()
        await pilot.pause(1.0)
        save(app, "data", tmp)
        app.action_tab("runs")
        await pilot.pause(0.5)
        pane = app.runs_pane
        table = app.query_one("#runs-table", DataTable)
        table.focus()
        for run in (first, second):
            table.move_cursor(row=[r.path for r in pane.runs].index(run))
            await pilot.press("space")
        await pilot.press("c")
        await pilot.pause(0.6)
        save(app, "runs", tmp)
        app.action_tab("plugins")
        await pilot.pause(0.5)
        save(app, "plugins", tmp)


def main() -> int:
    with tempfile.TemporaryDirectory() as d:
        asyncio.run(take(Path(d)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
