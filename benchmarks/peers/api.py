"""One interface over the peers: build from a posejax state, sample (batched, compiled, or
one pass per hypothesis), train steps, and the equality check against posejax."""

from __future__ import annotations

import jax
import numpy as np
import torch

from benchmarks.peers import geometry as g
from benchmarks.peers import htnet as htnet_peer
from benchmarks.peers import martinez, wsgn
from posejax.core import rng

TORCH_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def build(method: str, config, state):
    """The torch module of ``method`` with ``state`` 's weights (float32, eval mode)."""
    m = config.model
    if method == "gan":
        peer = wsgn.load(wsgn.WSGN(m), state)
    elif method == "ans":
        peer = ANSPeer(config, state)
    elif method in ("baseline", "mdn"):
        net = martinez.BaselineNet(m) if method == "baseline" else martinez.MDNNet(m)
        peer = martinez.load(martinez.Lifter(net), state)
    else:
        raise KeyError(f"no PyTorch peer for method {method!r}; have ans, baseline, gan, mdn")
    return peer.to(device()).eval()


def sample_fn(method: str, peer):
    """``(kp2d [B, 17, 2] px tensor, S) -> [B, S, 17, 3]`` mm, batched over S."""
    return {
        "ans": lambda kp, s: peer.sample(kp, s),
        "baseline": lambda kp, s: martinez.baseline_sample(peer, kp, s),
        "mdn": lambda kp, s: martinez.mdn_sample(peer, kp, s),
        "gan": lambda kp, s: wsgn.sample(peer, kp, s),
    }[method]


def loop_fn(method: str, peer):
    """One forward pass per hypothesis (official evaluation style); None if the method
    draws no hypotheses."""
    return {
        "ans": lambda kp, s: peer.sample(kp, s, loop=True),
        "mdn": lambda kp, s: martinez.mdn_sample_loop(peer, kp, s),
        "gan": lambda kp, s: wsgn.sample_loop(peer, kp, s),
    }.get(method)


def train_step(method: str, config, peer, kp2d, pose3d_cam, *, compile: bool = False):
    """A callable running one peer training step on the device-resident split (torch
    tensors ``kp2d [N, 17, 2]`` px, ``pose3d_cam [N, 17, 3]`` mm)."""
    cls = wsgn.TrainStep if method == "gan" else martinez.LifterTrainStep
    return cls(peer.train(), config, kp2d, pose3d_cam, compile=compile)


class ANSPeer(torch.nn.Module):
    """``ans`` in PyTorch: the HTNet peer (``peers/htnet.py``) between the screen
    normalisation and mm. The AVG is not ported: ``sample`` takes sigma (default: the
    floor ``alpha * sigma_floor`` at every joint); at S = 200 the AVG's two passes per
    frame are 0.25% of the FLOPs of the 400 lifts, so the timings compare the lifts."""

    def __init__(self, config, state):
        super().__init__()
        m = config.model
        if m.lifter != "htnet":
            raise ValueError(f"the ans peer ports HTNet; this config has model.lifter={m.lifter!r}")
        h = m.htnet
        net = htnet_peer.HTNet(h.channels, h.hidden, h.layers, tuple(h.drop_path), h.dropout)
        self.net = htnet_peer.load(net, jax.tree.map(np.asarray, state.params["lifter"]))
        w, hgt = (float(v) for v in np.asarray(state.norm["res"]))
        self.register_buffer("offset", torch.tensor([1.0, hgt / w]))
        self.width, self.sigma0 = w, float(m.alpha * m.sigma_floor)
        self.flip = bool(config.eval.flip_tta)

    def sample(self, kp, num_samples, *, loop=False, sigma=None, **draws):
        """``kp [B, 17, 2]`` px -> ``[B, S, 17, 3]`` mm (pelvis 0)."""
        x = kp / self.width * 2 - self.offset.to(kp.dtype)
        if sigma is None:
            sigma = torch.full(kp.shape[:2], self.sigma0, dtype=kp.dtype, device=kp.device)
        fn = htnet_peer.sample_loop if loop else htnet_peer.sample
        return fn(self.net, x, sigma, num_samples, self.flip, **draws) * 1000.0


def jax_draws(pj_method, state, kp2d, key, num_samples: int) -> dict:
    """The random draws posejax's ``sample`` makes for ``key``, for the peer to reuse."""
    if pj_method.name == "gan":
        shape = (kp2d.shape[0], num_samples, pj_method.config.model.latent_dim)
        return {"z": rng.normal(key, shape)}
    if pj_method.name == "ans":
        from posejax.methods.ans import flip_2d

        x = pj_method._screen_input(state, kp2d)
        b = x.shape[0]
        sig = pj_method.sigmas(state, jax.numpy.concatenate([x, flip_2d(x)]))
        eps = pj_method.noise_draws(jax.random.split(key, b), num_samples)
        return {"sigma": sig[:b], "sigma_flip": sig[b:], "noise": eps[:b], "noise_flip": eps[b:]}
    if pj_method.name == "mdn":
        from posejax.methods.mdn import mixture_draws

        mix = pj_method.mixture(state, kp2d)
        keys = jax.random.split(key, kp2d.shape[0])
        d = mix.means.shape[-2] * 3
        comp, noise = mixture_draws(keys, mix.logits, num_samples, d)
        return {"comp": comp, "noise": noise}
    return {}


def check_equal(pj_method, state, peer, kp2d: np.ndarray, num_samples: int, seed: int = 0):
    """posejax ``sample`` vs the peer's batched sample on the same weights, inputs and
    random draws. Returns ``(max |diff| mm, max |posejax| mm)``."""
    key = jax.random.key(seed)
    ref = np.asarray(jax.jit(pj_method.sample, static_argnums=3)(state, kp2d, key, num_samples))
    draws = jax_draws(pj_method, state, kp2d, key, num_samples)
    kp = torch.from_numpy(np.asarray(kp2d, np.float32)).to(device())
    t = {k: torch.from_numpy(np.array(v)).to(device()) for k, v in draws.items()}
    with torch.inference_mode():
        if pj_method.name == "ans":
            out = peer.sample(kp, num_samples, **t)
        elif pj_method.name == "gan":
            out = wsgn.sample(peer, kp, num_samples, z=t["z"])
        elif pj_method.name == "mdn":
            out = martinez.mdn_sample(peer, kp, num_samples, t["comp"].long(), t["noise"])
        else:
            out = martinez.baseline_sample(peer, kp, num_samples)
    out = out.float().cpu().numpy()
    return float(np.abs(out - ref).max()), float(np.abs(ref).max())


def to_torch_split(host) -> tuple[torch.Tensor, torch.Tensor]:
    """``(kp2d, pose3d_cam)`` of the valid rows of a host ``PoseData``, on the device."""
    valid = np.asarray(host.valid)
    return (
        g.tensor(np.asarray(host.kp2d)[valid]).to(device()),
        g.tensor(np.asarray(host.pose3d_cam)[valid]).to(device()),
    )


def _rel(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / (np.max(np.abs(b)) + 1e-12))


def check_train_step(pj_method, state, dataset, peer, seed: int = 7) -> dict:
    """One posejax ``train_step`` vs one peer step on the same batch and draws.

    ``peer`` must hold ``state`` 's weights; dropout must be off (its masks cannot be
    shared). Returns relative differences of the logged metrics and of one updated
    kernel per network, ``{name: max |peer - posejax| / max |posejax|}``.
    """
    from posejax.methods import common as mc

    key = jax.random.key(seed)
    new, metrics = jax.jit(pj_method.train_step)(state, dataset.data, key)
    kp, pose = to_torch_split(dataset.host)
    step = train_step(pj_method.name, pj_method.config, peer, kp, pose)
    if pj_method.name == "gan":
        x, real, z = pj_method._batch(state, dataset.data, jax.random.fold_in(key, mc.DATA))
        k_crit = jax.random.split(jax.random.fold_in(key, mc.CRITIC), 1)[0]
        u = jax.random.uniform(k_crit, (real.shape[0], 1, 1))
        got = step(tuple(g.tensor(a).to(device()) for a in (x, real, z, u)))
        kernels = {
            "critic.out": (peer.critic.out, new.params["critic"]["out"]),
            "pose.out": (peer.pose.out, new.params["pose"]["out"]),
            "trunk.fc": (peer.trunk.fc, new.params["trunk"]["fc"]["dense"]),
        }
    else:
        n_valid = int(np.asarray(dataset.host.valid).sum())
        k_data = jax.random.fold_in(key, mc.DATA)
        size = pj_method.config.train.batch_size
        idx = np.array(jax.random.randint(k_data, (size,), 0, n_valid))
        got = step(torch.from_numpy(idx).long().to(device()))
        trunk, last = new.params["lifter"]["trunk"], len(peer.net.trunk.blocks) - 1
        kernels = {
            "trunk.input": (peer.net.trunk.input.dense, trunk["input"]["dense"]),
            "trunk.block": (peer.net.trunk.blocks[-1].block2.dense,
                            trunk["blocks"][last]["block2"]["dense"]),
        }  # fmt: skip
    out = {k: _rel(float(got[k]), float(metrics[k])) for k in got if k in metrics}
    for name, (mod, want) in kernels.items():
        out[f"param:{name}"] = _rel(mod.weight.detach().float().cpu().numpy().T, want["kernel"])
    return out
