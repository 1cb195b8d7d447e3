"""HTNet (Cai et al. 2023), the frozen single-hypothesis lifter of ANS / PRPose.

``shared/spec/ans.md`` section 4.1. A pose ``[B, 17, 2]`` is embedded per joint
(``Linear(2, C)`` plus a zero-initialised positional embedding), passed through ``layers``
Blocks and read out per joint (``LayerNorm(eps 1e-6) -> Linear(C, 3)``). Each Block splits
the channels into three ``C / 3`` chunks, one per level of the human-topology hierarchy:

* LJC (local joint connection): two modulated graph convolutions over the skeleton;
* IPC (inter-part constraint): strided Conv1d over limb joints, written back into the
  limb joints of the normalised input (functional overwrite, pitfall 8);
* GBI (global body interaction): multi-head self-attention over the 17 joints;

and mixes the concatenation with an MLP. Each level feeds its output into the next one's
input. Initialisation is PyTorch's (``torch_uniform`` / ``torch_xavier_uniform``), so
official checkpoints and freshly initialised models are drawn from the same laws.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from posejax.core import skeleton as skel

# IPC joint groups (H36M-17 VideoPose3D order): right leg, left leg, left arm, right arm.
LIMB_GATHER = (1, 2, 3, 4, 5, 6, 11, 12, 13, 14, 15, 16)
LIMB_WRITE = ((2, 3), (5, 6), (12, 13), (15, 16))
END_GATHER = (2, 3, 5, 6, 12, 13, 15, 16)
END_WRITE = ((3,), (6,), (13,), (16,))
GCN_HIDDEN = 384  # LJC graph-conv width (official value, independent of C)


# -- initialisers (PyTorch's laws) -------------------------------------------------------
def torch_uniform(bound: float):
    """``U(-bound, bound)``: PyTorch's default Linear / Conv init has ``1 / sqrt(fan_in)``
    (Kaiming-uniform with a = sqrt(5)) for weights and biases alike."""

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


def torch_xavier_uniform(gain: float = 1.0):
    """``nn.init.xavier_uniform_`` with PyTorch's fan convention: ``fan_in = shape[1] *
    prod(shape[2:])``, ``fan_out = shape[0] * prod(shape[2:])``. For the graph-conv weight
    ``[2, C_in, C_out]`` that is ``C_in * C_out`` and ``2 * C_out`` (Clarification 1); for
    the modulation ``[17, C_out]`` it is ``C_out`` and ``17``."""

    def init(key, shape, dtype=jnp.float32):
        rf = math.prod(shape[2:])
        bound = gain * math.sqrt(6.0 / (shape[1] * rf + shape[0] * rf))
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


def torch_linear(n_in: int, n_out: int, *, rngs: nnx.Rngs) -> nnx.Linear:
    """``nnx.Linear`` initialised like ``torch.nn.Linear``."""
    init = torch_uniform(1.0 / math.sqrt(n_in))
    return nnx.Linear(n_in, n_out, kernel_init=init, bias_init=init, rngs=rngs)


def layer_norm(c: int, eps: float, *, rngs: nnx.Rngs) -> nnx.LayerNorm:
    # Two-pass variance like torch: E[x^2] - E[x]^2 loses digits on the large HTNet features.
    return nnx.LayerNorm(c, epsilon=eps, use_fast_variance=False, rngs=rngs)


def gelu(x):
    return jax.nn.gelu(x, approximate=False)  # torch.nn.GELU's default (erf)


# -- graph -------------------------------------------------------------------------------
def skeleton_adjacency(parents=skel.H36M17_PARENTS) -> np.ndarray:
    """Base adjacency ``[J, J]`` of the graph convolutions (spec 4.1).

    Binary symmetric skeleton adjacency from ``parents`` (-1 for the root), rows divided
    by the joint degree (no self loops), then the diagonal set to 1.
    """
    parents = np.asarray(parents)
    j = len(parents)
    adj = np.zeros((j, j), np.float32)
    for child, parent in enumerate(parents):
        if parent >= 0:
            adj[child, parent] = adj[parent, child] = 1.0
    deg = adj.sum(1, keepdims=True)
    adj = adj / np.maximum(deg, 1.0)
    np.fill_diagonal(adj, 1.0)
    return adj


def gconv_params(n_in: int, n_out: int, num_joints: int = 17, split: bool = True) -> int:
    """Trainable parameters of one ``ModulatedGraphConv``."""
    k = 2 if split else 1
    return k * n_in * n_out + num_joints * n_out + num_joints * num_joints + n_out


class ModulatedGraphConv(nnx.Module):
    """Modulated graph convolution ``[..., J, C_in] -> [..., J, C_out]`` (spec 4.1).

    With ``A' = sym(A + A_hat)`` (``sym(B) = (B + B^T) / 2``, ``A_hat`` learnable, 1e-6
    everywhere at init, never masked: pitfall 11):

    * ``split=True`` (HTNet, AVG): ``W [2, C_in, C_out]``, ``H_k = X W_k``,
      ``out = (A' o I)(M o H_0) + (A' o (1 - I))(M o H_1) + b``;
    * ``split=False`` (the ``mgcn_lw`` lifter, Clarification 6): ``W [1, C_in, C_out]``,
      ``out = A' (M o X W) + b``.

    ``W`` and ``M [J, C_out]`` are Xavier-uniform (gain 1.414, PyTorch fans), ``b`` is
    ``U(+-1 / sqrt(C_out))``.
    """

    def __init__(self, n_in: int, n_out: int, adj, *, split: bool = True, rngs: nnx.Rngs):
        adj = np.asarray(adj, np.float32)
        if adj.ndim != 2 or adj.shape[0] != adj.shape[1]:
            raise ValueError(f"expected a square adjacency [J, J], found {adj.shape}")
        j = adj.shape[0]
        self.split = split
        # A static tuple: a constant of the program, not state (split_module sees only
        # Param and BatchStat).
        self.adj = tuple(map(tuple, adj.tolist()))
        xavier = torch_xavier_uniform(1.414)
        self.kernel = nnx.Param(xavier(rngs.params(), (2 if split else 1, n_in, n_out)))
        self.modulation = nnx.Param(xavier(rngs.params(), (j, n_out)))
        self.adj_learned = nnx.Param(jnp.full((j, j), 1e-6, jnp.float32))
        self.bias = nnx.Param(torch_uniform(1.0 / math.sqrt(n_out))(rngs.params(), (n_out,)))

    def __call__(self, x):
        """``x [..., J, C_in] -> [..., J, C_out]``."""
        a = jnp.asarray(self.adj) + self.adj_learned[...]
        a = (a + a.T) / 2
        m = self.modulation[...]
        h = jnp.einsum("...jc,kcd->k...jd", x, self.kernel[...])
        if not self.split:
            return jnp.einsum("ij,...jd->...id", a, m * h[0]) + self.bias[...]
        eye = jnp.eye(a.shape[0], dtype=a.dtype)
        self_term = jnp.diagonal(a)[:, None] * (m * h[0])
        neighbours = jnp.einsum("ij,...jd->...id", a * (1 - eye), m * h[1])
        return self_term + neighbours + self.bias[...]


# -- stochastic layers -------------------------------------------------------------------
def split_keys(key, n: int) -> list:
    """``n`` independent keys, or ``n`` Nones when ``key`` is None (deterministic call)."""
    return [None] * n if key is None else list(jax.random.split(key, n))


def drop_path(x, rate: float, *, train: bool, key=None, batch_dims: int = 1):
    """Stochastic depth: zeroes whole examples (the ``batch_dims`` leading axes share
    nothing) with probability ``rate`` and scales survivors by ``1 / (1 - rate)``; the
    identity unless ``train`` and ``key`` is given (Clarification 5)."""
    if not train or key is None or rate == 0.0:
        return x
    keep = 1.0 - rate
    shape = x.shape[:batch_dims] + (1,) * (x.ndim - batch_dims)
    mask = jax.random.bernoulli(key, keep, shape)
    return jnp.where(mask, x / keep, 0.0).astype(x.dtype)


class Mlp(nnx.Module):
    """``Linear -> GELU -> Dropout -> Linear -> Dropout`` (timm ``Mlp``)."""

    def __init__(self, n_in: int, hidden: int, n_out: int, dropout: float, *, rngs: nnx.Rngs):
        self.fc1 = torch_linear(n_in, hidden, rngs=rngs)
        self.fc2 = torch_linear(hidden, n_out, rngs=rngs)
        self.dropout = nnx.Dropout(dropout)

    def __call__(self, x, *, train: bool = False, key=None):
        k1, k2 = split_keys(key, 2)
        det = not train or key is None
        y = self.dropout(gelu(self.fc1(x)), deterministic=det, rngs=k1)
        return self.dropout(self.fc2(y), deterministic=det, rngs=k2)


def overwrite_joints(x, tokens, groups):
    """``x [..., J, C]`` with token ``i`` of ``tokens [..., G, C]`` written into every joint
    of ``groups[i]`` (a functional overwrite: the other joints keep their values)."""
    joints = np.array([j for g in groups for j in g])
    source = np.array([i for i, g in enumerate(groups) for _ in g])
    return x.at[..., joints, :].set(tokens[..., source, :])


# -- HTNet blocks ------------------------------------------------------------------------
class LJC(nnx.Module):
    """Local joint connection: ``X + DropPath(LN_b(G_2(GELU(G_1(LN_a(X))))))``."""

    def __init__(self, c: int, gcn_hidden: int, adj, *, rngs: nnx.Rngs):
        self.norm_a = layer_norm(c, 1e-5, rngs=rngs)
        self.gconv1 = ModulatedGraphConv(c, gcn_hidden, adj, rngs=rngs)
        self.gconv2 = ModulatedGraphConv(gcn_hidden, c, adj, rngs=rngs)
        self.norm_b = layer_norm(c, 1e-5, rngs=rngs)

    def __call__(self, x, rate: float, *, train: bool, key=None, batch_dims: int = 1):
        y = self.norm_b(self.gconv2(gelu(self.gconv1(self.norm_a(x)))))
        return x + drop_path(y, rate, train=train, key=key, batch_dims=batch_dims)


class PartTokens(nnx.Module):
    """One IPC stage: LN of the input, strided Conv1d over gathered joints -> part
    tokens (GELU, DropPath, + DropPath(MLP(LN))), written back into the LN output."""

    def __init__(self, c, hidden, gather, write, dropout, *, rngs: nnx.Rngs):
        self.gather, self.write = gather, write
        k = len(gather) // len(write)
        init = torch_uniform(1.0 / math.sqrt(c * k))  # torch Conv1d: fan_in = C_in * kernel
        self.norm = layer_norm(c, 1e-5, rngs=rngs)
        self.conv = nnx.Conv(c, c, kernel_size=(k,), strides=(k,), padding="VALID",
                             kernel_init=init, bias_init=init, rngs=rngs)  # fmt: skip
        self.token_norm = layer_norm(c, 1e-5, rngs=rngs)
        self.mlp = Mlp(c, hidden, c, dropout, rngs=rngs)

    def __call__(self, x, rate: float, *, train: bool, key=None, batch_dims: int = 1):
        k1, k2, k3 = split_keys(key, 3)
        dp = dict(train=train, batch_dims=batch_dims)
        u = self.norm(x)
        t = drop_path(gelu(self.conv(u[..., np.array(self.gather), :])), rate, key=k1, **dp)
        t = t + drop_path(self.mlp(self.token_norm(t), train=train, key=k2), rate, key=k3, **dp)
        return overwrite_joints(u, t, self.write)


class IPC(nnx.Module):
    """Inter-part constraint: ``Y = U + V + X`` with limb tokens in ``U`` (joints 2-3,
    5-6, 12-13, 15-16) and end-joint tokens in ``V`` (joints 3, 6, 13, 16)."""

    def __init__(self, c: int, hidden: int, dropout: float, *, rngs: nnx.Rngs):
        self.limbs = PartTokens(c, hidden, LIMB_GATHER, LIMB_WRITE, dropout, rngs=rngs)
        self.ends = PartTokens(c, hidden, END_GATHER, END_WRITE, dropout, rngs=rngs)

    def __call__(self, x, rate: float, *, train: bool, key=None, batch_dims: int = 1):
        k1, k2 = split_keys(key, 2)
        kw = dict(train=train, batch_dims=batch_dims)
        return self.limbs(x, rate, key=k1, **kw) + self.ends(x, rate, key=k2, **kw) + x


class Attention(nnx.Module):
    """Multi-head self-attention over joints (timm ``Attention``: qkv bias, output laid out
    ``[3, heads, head_dim]``, scale ``head_dim ** -0.5``, no attention dropout)."""

    def __init__(self, c: int, heads: int, dropout: float, *, rngs: nnx.Rngs):
        self.heads = heads
        self.qkv = torch_linear(c, 3 * c, rngs=rngs)
        self.proj = torch_linear(c, c, rngs=rngs)
        self.dropout = nnx.Dropout(dropout)

    def __call__(self, x, *, train: bool = False, key=None):
        *lead, n, c = x.shape
        qkv = self.qkv(x).reshape(*lead, n, 3, self.heads, c // self.heads)
        q, k, v = qkv[..., 0, :, :], qkv[..., 1, :, :], qkv[..., 2, :, :]
        logits = jnp.einsum("...nhd,...mhd->...hnm", q, k) * (c // self.heads) ** -0.5
        y = jnp.einsum("...hnm,...mhd->...nhd", jax.nn.softmax(logits, -1), v)
        y = self.proj(y.reshape(*lead, n, c))
        return self.dropout(y, deterministic=not train or key is None, rngs=key)


class GBI(nnx.Module):
    """Global body interaction: ``X + DropPath(MHSA(LN(X)))``."""

    def __init__(self, c: int, heads: int, dropout: float, *, rngs: nnx.Rngs):
        self.norm = layer_norm(c, 1e-5, rngs=rngs)
        self.attn = Attention(c, heads, dropout, rngs=rngs)

    def __call__(self, x, rate: float, *, train: bool, key=None, batch_dims: int = 1):
        k1, k2 = split_keys(key, 2)
        y = self.attn(self.norm(x), train=train, key=k1)
        return x + drop_path(y, rate, train=train, key=k2, batch_dims=batch_dims)


class Block(nnx.Module):
    """One HTNet block ``[..., 17, C] -> [..., 17, C]`` (no outer residual from X)."""

    def __init__(self, c, hidden, gcn_hidden, heads, adj, rate, dropout, *, rngs: nnx.Rngs):
        self.rate = float(rate)
        self.ljc = LJC(c // 3, gcn_hidden, adj, rngs=rngs)
        self.ipc = IPC(c // 3, hidden, dropout, rngs=rngs)
        self.gbi = GBI(c // 3, heads, dropout, rngs=rngs)
        self.norm = layer_norm(c, 1e-6, rngs=rngs)
        self.mlp = Mlp(c, hidden, c, dropout, rngs=rngs)

    def __call__(self, x, *, train: bool, key=None, batch_dims: int = 1):
        ks = split_keys(key, 5)
        kw = dict(train=train, batch_dims=batch_dims)
        x_l, x_i, x_g = jnp.split(x, 3, axis=-1)
        y_l = self.ljc(x_l, self.rate, key=ks[0], **kw)
        y_i = self.ipc(x_i + y_l, self.rate, key=ks[1], **kw)
        y_g = self.gbi(x_g + y_i, self.rate, key=ks[2], **kw)
        z = jnp.concatenate([y_l, y_i, y_g], axis=-1)
        y = self.mlp(self.norm(z), train=train, key=ks[3])
        return z + drop_path(y, self.rate, key=ks[4], **kw)


def check_widths(channels: int, heads: int) -> None:
    if channels % 3:
        raise ValueError(f"HTNet channels must be divisible by 3 (three chunks), found {channels}")
    if (channels // 3) % heads:
        raise ValueError(
            f"HTNet chunk width channels / 3 = {channels // 3} must be divisible by heads = {heads}"
        )


class HTNet(nnx.Module):
    """``[..., 17, 2]`` normalised screen coordinates -> ``[..., 17, 3]`` (spec 4.1).

    Defaults are the official ``--layers 3 --channel 240 --d_hid 1024`` (3,048,489
    parameters). ``hidden`` is the width of every MLP (IPC token MLPs and block MLPs),
    ``gcn_hidden`` the LJC graph-conv width, ``drop_path`` the (first, last) stochastic
    depth rate (linear over the blocks; one rate per block), ``dropout`` that of the MLPs
    and the attention projection.
    """

    def __init__(
        self,
        num_joints: int = 17,
        channels: int = 240,
        hidden: int = 1024,
        layers: int = 3,
        drop_path: tuple[float, float] = (0.1, 0.3),
        dropout: float = 0.1,
        *,
        heads: int = 8,
        gcn_hidden: int = GCN_HIDDEN,
        adj=None,
        rngs: nnx.Rngs,
    ):
        if num_joints != skel.NUM_JOINTS:
            raise ValueError(f"HTNet's IPC groups are H36M-17 joints: num_joints must be 17, "
                             f"found {num_joints}")  # fmt: skip
        check_widths(channels, heads)
        adj = skeleton_adjacency() if adj is None else adj
        self.num_joints = num_joints
        self.patch_embed = torch_linear(2, channels, rngs=rngs)
        self.pos_embed = nnx.Param(jnp.zeros((num_joints, channels), jnp.float32))
        rates = np.linspace(drop_path[0], drop_path[1], layers)
        self.blocks = nnx.List(
            [Block(channels, hidden, gcn_hidden, heads, adj, r, dropout, rngs=rngs) for r in rates]
        )
        self.norm = layer_norm(channels, 1e-6, rngs=rngs)
        self.head = torch_linear(channels, 3, rngs=rngs)

    def __call__(self, x, *, train: bool = False, key=None):
        """Lifts 2D poses.

        Args:
          x: ``[..., 17, 2]`` normalised screen coordinates (any leading batch shape).
          train: DropPath and dropout active (with ``key``) when True.
          key: randomness of DropPath / dropout (training only).

        Returns:
          ``[..., 17, 3]`` root-relative 3D in the lifter's training units (metres in the
          official code); the pelvis row is whatever the network outputs.
        """
        if x.ndim < 3 or x.shape[-2:] != (self.num_joints, 2):
            raise ValueError(f"expected 2D input [B, {self.num_joints}, 2], found {x.shape}")
        h = self.patch_embed(x) + self.pos_embed[...]
        keys = split_keys(key, len(self.blocks))
        for block, k in zip(self.blocks, keys, strict=True):
            h = block(h, train=train, key=k, batch_dims=x.ndim - 2)
        return self.head(self.norm(h))


def num_params(
    channels: int = 240, hidden: int = 1024, layers: int = 3, gcn_hidden: int = GCN_HIDDEN,
    num_joints: int = 17,
) -> int:  # fmt: skip
    """Trainable parameters from the layer list (3,048,489 for the defaults, spec 4.1)."""
    c, j = channels // 3, num_joints
    ln = lambda n: 2 * n
    lin = lambda n_in, n_out: n_in * n_out + n_out
    mlp = lambda n: lin(n, hidden) + lin(hidden, n)
    ljc = 2 * ln(c) + gconv_params(c, gcn_hidden, j) + gconv_params(gcn_hidden, c, j)
    part = lambda k: ln(c) + (k * c * c + c) + ln(c) + mlp(c)
    ipc = part(len(LIMB_GATHER) // len(LIMB_WRITE)) + part(len(END_GATHER) // len(END_WRITE))
    gbi = ln(c) + lin(c, 3 * c) + lin(c, c)
    block = ljc + ipc + gbi + ln(channels) + mlp(channels)
    return lin(2, channels) + j * channels + layers * block + ln(channels) + lin(channels, 3)
