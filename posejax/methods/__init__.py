"""Methods: config -> networks + optimizers -> the hooks of the method contract.

``methods/base.py`` is the contract (capabilities and hooks, with defaults in
``MethodBase``). ``REGISTRY`` maps a config's ``method`` string to the class; adding a
method is one line here. ``get`` raises an error that lists the valid names.
"""

from posejax.methods import base
from posejax.methods.ans import ANSMethod
from posejax.methods.baseline import BaselineMethod
from posejax.methods.gan import GANMethod
from posejax.methods.hourglass import HourglassMethod
from posejax.methods.mdn import MDNMethod
from posejax.methods.pose_machines import PoseMachinesMethod

REGISTRY = {
    "ans": ANSMethod,
    "baseline": BaselineMethod,
    "gan": GANMethod,
    "hourglass": HourglassMethod,
    "mdn": MDNMethod,
    "pose_machines": PoseMachinesMethod,
}


def get(name: str):
    """The registered method class ``name`` (its declared capabilities checked)."""
    if name not in REGISTRY:
        raise KeyError(f"unknown method {name!r}; expected one of {sorted(REGISTRY)}")
    cls = REGISTRY[name]
    base.check_declared(cls)
    return cls
