import pytest

from workbench import Param, hookimpl
from workbench.plugin_host import load_plugins


class _Loss:
    __name__ = "throwaway"

    @hookimpl
    def register_losses(self, register):
        register("throwaway_loss", lambda **kw: None, description="a test loss",
                 params=(Param("w", "float", 1.0, "weight"),))


class _Broken:
    @hookimpl
    def register_gates(self, register):
        raise RuntimeError("boom")


class _Events:
    def __init__(self):
        self.seen = []

    @hookimpl
    def on_epoch_end(self, epoch):
        self.seen.append(epoch)


class _RaisingEvents:
    @hookimpl
    def on_epoch_end(self, epoch, metrics):
        raise ValueError("bad hook")


def test_items_know_their_plugin():
    host = load_plugins(entry_points=False, extra_plugins=[("throwaway", _Loss())])
    item = host.get("loss", "throwaway_loss")
    assert item.plugin == "throwaway" and item.param_defaults() == {"w": 1.0}


def test_duplicate_names_name_both_plugins_and_disable_the_later():
    host = load_plugins(entry_points=False, extra_plugins=[("one", _Loss()), ("two", _Loss())])
    assert host.get("loss", "throwaway_loss").plugin == "one"
    [problem] = host.problems
    assert problem.plugin == "two" and "plugin one" in problem.error and problem.stage == "name collision"
    assert "LVM_WORKBENCH_DISABLE_PLUGINS=two" in problem.line()


def test_failing_plugin_is_reported_not_fatal():
    host = load_plugins(entry_points=False, extra_plugins=[("broken", _Broken()), ("ok", _Loss())])
    assert [p.plugin for p in host.problems] == ["broken"]
    assert "throwaway_loss" in host.names("loss")


def test_event_hooks_are_isolated_and_take_subsets():
    ev = _Events()
    host = load_plugins(entry_points=False, extra_plugins=[("bad", _RaisingEvents()), ("good", ev)])
    failures = host.emit("on_epoch_end", run=None, epoch=3, metrics={})
    assert ev.seen == [3]
    assert [f.plugin for f in failures] == ["bad"] and "bad hook" in failures[0].error


def test_unknown_name_lists_known_and_suggests():
    host = load_plugins(entry_points=False, extra_plugins=[("throwaway", _Loss())])
    with pytest.raises(Exception, match="did you mean 'throwaway_loss'"):
        host.get("loss", "throwaway_los")


@pytest.mark.parametrize("dist, version, shown", [
    ("lvm-workbench", "0.3.0", "plugin p (lvm-workbench 0.3.0)"),
    ("some-dist", "", "plugin p (some-dist)"),
    ("(in-process)", "", "plugin p (in-process)"),
    ("(local module)", "", "plugin p (local module)"),
])
def test_a_plugins_origin_is_named_with_one_pair_of_parentheses(dist, version, shown):
    """A placeholder distribution is already in parentheses; it used to be wrapped again:
    'plugin p ((in-process))'."""
    from workbench.plugin_guard import origin
    from workbench.plugin_host import Item, PluginProblem

    item = Item(kind="gate", name="g", obj=None, description="", params=(), plugin="p", dist=dist, version=version)
    assert origin(item) == shown
    assert PluginProblem("p", "import", "boom", dist, version).line().startswith(f"{shown} disabled, import: boom")


def test_a_plugin_registered_in_process_is_named_once_in_event_hook_failures():
    host = load_plugins(entry_points=False, extra_plugins=[("raiser", _RaisingEvents())])
    assert host.origin("raiser") == "plugin raiser (in-process)"
    [failure] = host.emit("on_epoch_end", epoch=1, metrics={})
    assert failure.line().startswith("plugin raiser (in-process) disabled, on_epoch_end: ValueError: bad hook")
