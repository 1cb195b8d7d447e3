"""Methods: config -> networks + optimizers -> create_state / train_step / eval_step / sample.

``REGISTRY`` maps a config's ``method`` string to the class; ``get`` raises an error that
lists the valid names.
"""

from posejax.methods.baseline import BaselineMethod
from posejax.methods.gan import GANMethod
from posejax.methods.mdn import MDNMethod

REGISTRY = {
    "baseline": BaselineMethod,
    "gan": GANMethod,
    "mdn": MDNMethod,
}


def get(name: str):
    if name not in REGISTRY:
        raise KeyError(f"unknown method {name!r}; expected one of {sorted(REGISTRY)}")
    return REGISTRY[name]
