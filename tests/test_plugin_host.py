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
