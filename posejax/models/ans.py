"""ANS / PRPose networks besides the HTNet lifter: the adaptive variance generators (AVG)
and the light ``mgcn_lw`` lifter.

``shared/spec/ans.md`` sections 4.1-4.2 and Clarification 6:

* ``AVGGCN``: modulated GCN (two-weight graph conv, learnable ``A_hat``), hidden 256,
  4 residual blocks, ``[B, 17, 2] -> [B, 17]`` one linear noise scale per joint
  (1,099,100 parameters). The variance for HTNet.
* ``MGCNLight``: the same GCN with the single-weight graph conv, hidden 128, output 3:
  the ``mgcn_lw`` lifter ``[B, 17, 2] -> [B, 17, 3]`` (157,696 parameters).
* ``AVGMLP``: the Martinez-style MLP that is ``mgcn_lw`` 's AVG, ``34 -> 64 -> 17``
  (12,049 parameters).

BatchNorm is PyTorch's ``BatchNorm1d`` (momentum 0.1, i.e. Flax 0.9; eps 1e-5); in the
GCNs its statistics run over batch *and* joints (pitfall 7). Unlike the official module,
a batch of one works (the official forward squeezes its input).
"""

from __future__ import annotations

import jax
import numpy as np
from flax import nnx

from posejax.models.htnet import (
    ModulatedGraphConv,
    gconv_params,
    skeleton_adjacency,
    split_keys,
    torch_linear,
)

BN_MOMENTUM, BN_EPS = 0.9, 1e-5  # torch BatchNorm1d defaults (torch momentum 0.1)


def batch_norm(c: int, *, rngs: nnx.Rngs) -> nnx.BatchNorm:
    # Flax reduces over every axis but the last: [B, J, C] gives batch x joint statistics.
    return nnx.BatchNorm(c, momentum=BN_MOMENTUM, epsilon=BN_EPS, rngs=rngs)


def _check_input(x, num_joints: int) -> None:
    if x.ndim < 3 or x.shape[-2:] != (num_joints, 2):
        raise ValueError(f"expected 2D input [B, {num_joints}, 2], found {tuple(x.shape)}")


class GraphConvBN(nnx.Module):
    """``ModulatedGraphConv -> BatchNorm (batch x joints) -> ReLU``."""

    def __init__(self, n_in: int, n_out: int, adj, *, split: bool, rngs: nnx.Rngs):
        self.gconv = ModulatedGraphConv(n_in, n_out, adj, split=split, rngs=rngs)
        self.bn = batch_norm(n_out, rngs=rngs)

    def __call__(self, x, *, train: bool = False):
        return jax.nn.relu(self.bn(self.gconv(x), use_running_average=not train))


class ResGraphBlock(nnx.Module):
    """Two ``GraphConvBN`` plus the block input (no activation after the addition)."""

    def __init__(self, width: int, adj, *, split: bool, rngs: nnx.Rngs):
        self.layer1 = GraphConvBN(width, width, adj, split=split, rngs=rngs)
        self.layer2 = GraphConvBN(width, width, adj, split=split, rngs=rngs)

    def __call__(self, x, *, train: bool = False):
        return x + self.layer2(self.layer1(x, train=train), train=train)


class ModulatedGCN(nnx.Module):
    """``[..., J, 2] -> [..., J, out_dim]``: input ``GraphConvBN(2, hidden)``, ``blocks``
    residual blocks, output graph conv ``hidden -> out_dim`` (linear). The common body of
    ``AVGGCN`` and ``MGCNLight``; no dropout (official ``p_dropout=None``)."""

    def __init__(self, adj, hidden: int, blocks: int, out_dim: int, *, split: bool,
                 rngs: nnx.Rngs):  # fmt: skip
        adj = skeleton_adjacency() if adj is None else np.asarray(adj, np.float32)
        self.num_joints = adj.shape[0]
        self.input = GraphConvBN(2, hidden, adj, split=split, rngs=rngs)
        self.blocks = nnx.List(
            [ResGraphBlock(hidden, adj, split=split, rngs=rngs) for _ in range(blocks)]
        )
        self.output = ModulatedGraphConv(hidden, out_dim, adj, split=split, rngs=rngs)

    def __call__(self, x, *, train: bool = False, key=None):
        """``key`` is accepted for a uniform model signature; nothing here is random."""
        del key
        _check_input(x, self.num_joints)
        h = self.input(x, train=train)
        for block in self.blocks:
            h = block(h, train=train)
        return self.output(h)


class AVGGCN(nnx.Module):
    """Adaptive variance network for HTNet (spec 4.2): ``[..., 17, 2]`` normalised 2D ->
    ``[..., 17]`` raw noise scales ``sigma_hat`` (linear, may be < 1 or negative; the
    ``max(sigma_hat, 1)`` floor is applied at test time only, Clarification 2)."""

    def __init__(self, adj=None, hidden: int = 256, blocks: int = 4, *, rngs: nnx.Rngs):
        self.gcn = ModulatedGCN(adj, hidden, blocks, 1, split=True, rngs=rngs)

    def __call__(self, x, *, train: bool = False, key=None):
        """``x [..., 17, 2] -> [..., 17]`` (one scalar per joint, shared by x and y);
        ``key`` is unused (no dropout)."""
        return self.gcn(x, train=train, key=key)[..., 0]


class MGCNLight(nnx.Module):
    """The ``mgcn_lw`` lifter (Clarification 6): single-weight modulated graph convs,
    ``[..., 17, 2] -> [..., 17, 3]``."""

    def __init__(self, adj=None, hidden: int = 128, blocks: int = 4, *, rngs: nnx.Rngs):
        self.gcn = ModulatedGCN(adj, hidden, blocks, 3, split=False, rngs=rngs)

    def __call__(self, x, *, train: bool = False, key=None):
        """``x [..., 17, 2] -> [..., 17, 3]``; ``key`` is unused (no dropout)."""
        return self.gcn(x, train=train, key=key)


class DenseBN(nnx.Module):
    """``Linear -> BatchNorm -> ReLU -> Dropout`` (torch init and BN defaults)."""

    def __init__(self, n_in: int, n_out: int, dropout: float, *, rngs: nnx.Rngs):
        self.dense = torch_linear(n_in, n_out, rngs=rngs)
        self.bn = batch_norm(n_out, rngs=rngs)
        self.dropout = nnx.Dropout(dropout)

    def __call__(self, x, *, train: bool = False, key=None):
        y = jax.nn.relu(self.bn(self.dense(x), use_running_average=not train))
        return self.dropout(y, deterministic=not train or key is None, rngs=key)


class AVGMLP(nnx.Module):
    """Adaptive variance MLP of ``mgcn_lw`` (spec 4.2): ``[B, 17, 2]`` flattened to 34 ->
    ``DenseBN(64)`` -> one residual block of two ``DenseBN(64)`` -> ``Linear(64, 17)``,
    output ``[B, 17]`` raw noise scales."""

    def __init__(self, hidden: int = 64, dropout: float = 0.5, *, num_joints: int = 17,
                 rngs: nnx.Rngs):  # fmt: skip
        self.num_joints = num_joints
        self.input = DenseBN(2 * num_joints, hidden, dropout, rngs=rngs)
        self.block1 = DenseBN(hidden, hidden, dropout, rngs=rngs)
        self.block2 = DenseBN(hidden, hidden, dropout, rngs=rngs)
        self.output = torch_linear(hidden, num_joints, rngs=rngs)

    def __call__(self, x, *, train: bool = False, key=None):
        """``x [..., 17, 2] -> [..., 17]``; ``key`` drives dropout when ``train``."""
        _check_input(x, self.num_joints)
        k0, k1, k2 = split_keys(key, 3)
        h = self.input(x.reshape(x.shape[:-2] + (2 * self.num_joints,)), train=train, key=k0)
        h = h + self.block2(self.block1(h, train=train, key=k1), train=train, key=k2)
        return self.output(h)


def num_params_gcn(in_dim=2, out_dim=1, hidden=256, blocks=4, split=True, num_joints=17):
    """Trainable parameters of ``ModulatedGCN`` from its layer list: 1,099,100 for
    ``AVGGCN`` 's defaults, 157,696 for ``MGCNLight`` (``2, 3, 128, 4, split=False``)."""
    layer = lambda n_in, n_out: gconv_params(n_in, n_out, num_joints, split) + 2 * n_out
    return (
        layer(in_dim, hidden)
        + 2 * blocks * layer(hidden, hidden)
        + gconv_params(hidden, out_dim, num_joints, split)
    )


def num_params_mlp(hidden=64, num_joints=17):
    """Trainable parameters of ``AVGMLP`` (12,049 for the defaults)."""
    layer = lambda n_in, n_out: n_in * n_out + n_out + 2 * n_out  # Linear + BN affine
    return (
        layer(2 * num_joints, hidden) + 2 * layer(hidden, hidden) + hidden * num_joints + num_joints
    )
