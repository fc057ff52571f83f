"""The plan: its schema (schema.py), the line locator (locate.py), loading with validation
(load.py), the validated dataclasses (plan.py) and writing it back (save.py)."""

from .load import gate_names_problem, load_plan, load_run_plan, plan_from_dict, plan_from_text
from .locate import toml_key_lines
from .plan import DataPlan, GatesPlan, LossPlan, ModelPlan, Plan, PluginsPlan, SplitPlan
from .save import plan_sha256, plan_to_dict, plan_to_toml

__all__ = ["DataPlan", "GatesPlan", "LossPlan", "ModelPlan", "Plan", "PluginsPlan", "SplitPlan", "gate_names_problem",
           "load_plan", "load_run_plan", "plan_from_dict", "plan_from_text", "plan_sha256", "plan_to_dict",
           "plan_to_toml", "toml_key_lines"]
