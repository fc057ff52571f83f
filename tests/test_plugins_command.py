"""`lvm-workbench plugins` lists every item's parameters with type, default and range or choices,
and `--json` the same fields (issue 12: docs/strategies.md and docs/plugins.md say so)."""

from __future__ import annotations

import json

from workbench.cli import main


def test_the_table_lists_parameters_with_type_default_and_range(capsys):
    assert main(["plugins", "--kind", "embedder"]) == 0
    out = capsys.readouterr().out
    assert "batch_size (int, default 16, >= 1): texts per forward pass" in out  # minilm: a range
    assert main(["plugins", "--kind", "corpus_reader"]) == 0
    out = capsys.readouterr().out
    assert "unit (str, default 'book', one of ['book', 'chapter'])" in out  # kjv: choices


def test_json_gives_type_default_help_min_max_and_choices(capsys):
    assert main(["plugins", "--json"]) == 0
    items = json.loads(capsys.readouterr().out)["items"]
    by = {(i["kind"], i["name"]): {p["name"]: p for p in i["params"]} for i in items}
    assert by[("embedder", "minilm")]["batch_size"] == {
        "name": "batch_size", "type": "int", "default": 16, "min": 1, "max": None, "choices": None,
        "help": by[("embedder", "minilm")]["batch_size"]["help"]}
    assert by[("corpus_reader", "kjv")]["unit"]["choices"] == ["book", "chapter"]
    assert all(set(p) == {"name", "type", "default", "help", "min", "max", "choices"}
               for params in by.values() for p in params.values())
