"""3D pose machines (Wang et al., T-PAMI 2020; ``shared/spec/pose_machines.md`` section 4).

Four networks (``state.params`` names in brackets), images ``[..., H, W, 3]`` RGB in [0, 1]
(centred as ``x - 0.5``, Caffe's ``(pixel - 128) / 256`` up to the channel order):

* **2D pose module** Psi_R (``front``): the spec's VGG/CPM front (conv1_1 ... conv4_7_CPM,
  3x3 pad 1 ReLU, three 2x2 max-pools: 128 channels at H/8; ``front='vgg_cpm'``) or a
  smaller front for ``:quick`` (``front='small'``: two 2x2 pools, ``front_widths``), and
  CPM-style belief-map stages on its features (``belief_stages``; stage 1: 3x3 (512) ->
  1x1 (512) -> 1x1 (J); stage t > 1: concat(features, beliefs) -> 5 x 7x7 -> 1x1 -> 1x1
  (J), as in the convolutional pose machines the front comes from). The spec's parameter
  count covers the front convolutions only (the belief stages belong to the released CPM).
* **2D-to-3D transformer** Psi_T (``transformer``): special_conv_1-2 (3x3 pad 1, ReLU) ->
  fa_conv_1-2 (5x5 stride 2 pad 1, ReLU; ``fa_pool`` adds the paper's 2x2 max-pools) ->
  flatten -> FC (no activation, errata 6) -> LSTM1 -> LSTM2 -> FC to 48 (no activation).
  ``temporal``: ``clean_backward`` (default: LSTM2 runs on the time-reversed sequence and
  resets at the true sequence ends), ``caffe_exact`` (LSTM2 on the reversed sequence with
  the non-reversed clip flags, as Caffe does, spec pitfall 2) or ``stacked`` (the paper:
  LSTM2 forward over LSTM1's outputs).
* **Correction** Psi_C (``correction``): FC 48 -> H, ReLU, FC H -> 48 (the corrected pose).
* **Projection** Psi_P (``projection``): p1 = ReLU(FC 48 -> H); p3 = ReLU(FC(ReLU(FC(p1))));
  FC(p1 + p3) -> 32 (the 2D pose, interleaved x, y per joint, crop side = 1).

LSTMs are Caffe's: gates ``W_x x + b + W_h h`` (no hidden bias), order i, f, o, g, state
multiplied by the clip flag (0 starts a sequence) before each step; ``jax.lax.scan`` over
time, batched over clips. Initialisation (``init``): ``'caffe'`` (the prototxts: Gaussian
std 0.01 for the transformer's and projector's convolutions and FCs, LSTM weights U(-0.01,
0.01), biases 0) or ``'fan_in'`` (He / LeCun normal, PyTorch's LSTM bound): with Caffe's
0.01 the signal shrinks about 6x per layer, so gradients reaching the first layers fall
under Adam's eps for thousands of steps; the paper trains 300k iterations, ``:quick`` a
few thousand, so ``:quick`` uses ``fan_in``. The front has no released CPM weights here,
so it is trained from He-normal initialisation (``pose2d`` stage). At the official sizes
(368 px, 1024-wide FC / LSTM / projector) the four networks without the belief stages
have 42,449,728 parameters: VGG 5,865,536, CPM convs 3,245,184, special 295,168, fa
819,456, FC 13,108,224, LSTMs 16,785,408, final FC 49,200, Psi_C 99,376, Psi_P 2,182,176
(spec section 4; ``official_param_counts``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

J = 16  # H36M-16 (spec 3.1)
H36M16 = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15, 16])  # <- H36M-17
PARENTS16 = np.array([0, 0, 1, 2, 0, 4, 5, 0, 7, 8, 8, 10, 11, 8, 13, 14])
VGG = ((64, 64, "pool"), (128, 128, "pool"), (256, 256, 256, 256, "pool"), (512, 512))
CPM = (256, 256, 256, 256, 128)  # conv4_3_CPM ... conv4_7_CPM
TEMPORAL = ("clean_backward", "caffe_exact", "stacked")
FRONTS = ("vgg_cpm", "small")

gauss01 = nnx.initializers.normal(0.01)
he = nnx.initializers.variance_scaling(2.0, "fan_in", "normal")
zeros = nnx.initializers.zeros


INITS = ("caffe", "fan_in")
lecun = nnx.initializers.variance_scaling(1.0, "fan_in", "normal")


def _lstm_uniform(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -0.01, 0.01)


def _lstm_fan_in(key, shape, dtype=jnp.float32):  # PyTorch's LSTM: U(+-1/sqrt(hidden))
    bound = 1.0 / np.sqrt(shape[-1] / 4)
    return jax.random.uniform(key, shape, dtype, -bound, bound)


def weight_init(init: str, relu: bool = True):
    """Caffe's Gaussian std 0.01 (``'caffe'``) or fan-in scaled (``'fan_in'``: He for
    layers followed by a ReLU, LeCun otherwise)."""
    if init not in INITS:
        raise ValueError(f"unknown model.init {init!r}; expected one of {INITS}")
    return gauss01 if init == "caffe" else (he if relu else lecun)


def conv(c_in, c_out, k, stride=1, pad=None, *, init=gauss01, rngs):
    p = k // 2 if pad is None else pad
    return nnx.Conv(
        c_in,
        c_out,
        (k, k),
        strides=stride,
        padding=((p, p), (p, p)),
        kernel_init=init,
        bias_init=zeros,
        rngs=rngs,
    )


def dense(d_in, d_out, *, init=gauss01, rngs):
    return nnx.Linear(d_in, d_out, kernel_init=init, bias_init=zeros, rngs=rngs)


def max_pool(x):
    return nnx.max_pool(x, (2, 2), strides=(2, 2))


def front_layers(front: str, widths=()) -> tuple:
    """The front's layer list: channel counts and ``'pool'`` (``front_widths`` for
    ``small``: ``(w1, w2, w3, out)`` -> w1 w1 pool w2 w2 pool w3 out)."""
    if front == "vgg_cpm":
        return tuple(x for block in VGG for x in block) + CPM
    if front == "small":
        w1, w2, w3, out = widths
        return (w1, w1, "pool", w2, w2, "pool", w3, out)
    raise ValueError(f"unknown model.front {front!r}; expected one of {FRONTS}")


def front_stride(front: str, widths=()) -> int:
    return 2 ** sum(x == "pool" for x in front_layers(front, widths))


class Front(nnx.Module):
    """Psi_R: the convolutional features ``[N, H/s, W/s, C]`` and the belief maps of every
    stage ``[stages, N, H/s, W/s, J]``."""

    def __init__(self, front="vgg_cpm", widths=(), belief_stages=2, num_joints=J, *, rngs):
        layers, c, convs = front_layers(front, widths), 3, []
        for x in layers:
            if x == "pool":
                convs.append(None)
            else:
                convs.append(conv(c, x, 3, init=he, rngs=rngs))
                c = x
        self.convs = nnx.List(convs)
        self.channels = c
        mid = 512 if front == "vgg_cpm" else 2 * c
        stages = [
            nnx.List(
                [
                    conv(c, mid, 3, init=he, rngs=rngs),
                    conv(mid, mid, 1, init=he, rngs=rngs),
                    conv(mid, num_joints, 1, init=gauss01, rngs=rngs),
                ]
            )
        ]
        for _ in range(belief_stages - 1):
            m = 128 if front == "vgg_cpm" else c
            layers_t = [conv(c + num_joints, m, 7, init=he, rngs=rngs)]
            layers_t += [conv(m, m, 7, init=he, rngs=rngs) for _ in range(4)]
            layers_t += [conv(m, m, 1, init=he, rngs=rngs), conv(m, num_joints, 1, rngs=rngs)]
            stages.append(nnx.List(layers_t))
        self.stages = nnx.List(stages)

    def features(self, images):
        x = images - 0.5
        for layer in self.convs:
            x = max_pool(x) if layer is None else jax.nn.relu(layer(x))
        return x

    def beliefs(self, feats):
        out, b = [], None
        for stage in self.stages:
            x = feats if b is None else jnp.concatenate([feats, b], -1)
            for i, layer in enumerate(stage):
                x = layer(x)
                if i < len(stage) - 1:
                    x = jax.nn.relu(x)
            b = x
            out.append(b)
        return jnp.stack(out)

    def __call__(self, images):
        f = self.features(images)
        return f, self.beliefs(f)


class CaffeLSTM(nnx.Module):
    """Caffe's LSTM layer: ``x [B, T, D]``, ``cont [B, T]`` (0 resets) -> ``[B, T, H]``."""

    def __init__(self, d_in, hidden, *, init="caffe", rngs):
        w = _lstm_uniform if init == "caffe" else _lstm_fan_in
        self.w_x = nnx.Linear(d_in, 4 * hidden, kernel_init=w, bias_init=zeros, rngs=rngs)
        self.w_h = nnx.Linear(hidden, 4 * hidden, use_bias=False, kernel_init=w, rngs=rngs)
        self.hidden = hidden

    def __call__(self, x, cont, state=None):
        b, h = x.shape[0], self.hidden
        gx = self.w_x(x)  # [B, T, 4H]: all time steps at once
        if state is None:
            state = (jnp.zeros((b, h), x.dtype), jnp.zeros((b, h), x.dtype))

        def step(carry, inp):
            hp, cp = carry
            g, c_flag = inp
            keep = c_flag[:, None].astype(g.dtype)
            hp, cp = hp * keep, cp * keep
            g = g + self.w_h(hp)
            i, f, o, gg = jnp.split(g, 4, axis=-1)
            c = jax.nn.sigmoid(f) * cp + jax.nn.sigmoid(i) * jnp.tanh(gg)
            hn = jax.nn.sigmoid(o) * jnp.tanh(c)
            return (hn, c), hn

        state, ys = jax.lax.scan(step, state, (gx.swapaxes(0, 1), cont.swapaxes(0, 1)))
        return ys.swapaxes(0, 1), state


def backward_flags(cont):
    """Clip flags for the time-reversed sequence that reset at the true sequence ends:
    reversed step t resets where original step T-1-t is the last of its sequence."""
    nxt = jnp.concatenate([cont[:, 1:], jnp.zeros_like(cont[:, :1])], axis=1)
    return nxt[:, ::-1]


class Transformer(nnx.Module):
    """Psi_T: features ``[B, T, h, w, C]`` and clip flags ``[B, T]`` -> ``[B, T, 48]``."""

    def __init__(
        self,
        c_in,
        feat_hw,
        special=128,
        fc=1024,
        lstm_hidden=1024,
        temporal="clean_backward",
        fa_pool=False,
        init="caffe",
        *,
        rngs,
    ):
        if temporal not in TEMPORAL:
            raise ValueError(f"unknown model.temporal {temporal!r}; expected one of {TEMPORAL}")
        self.temporal, self.fa_pool = temporal, fa_pool
        w = weight_init(init)
        self.special_1 = conv(c_in, special, 3, init=w, rngs=rngs)
        self.special_2 = conv(special, special, 3, init=w, rngs=rngs)
        self.fa_1 = conv(special, special, 5, stride=2, pad=1, init=w, rngs=rngs)
        self.fa_2 = conv(special, special, 5, stride=2, pad=1, init=w, rngs=rngs)
        s = feat_hw
        for _ in range(2):
            s = (s + 2 - 5) // 2 + 1
            s = s // 2 if fa_pool else s
        if s < 1:
            raise ValueError(f"features of {feat_hw} px are too small for the fa convolutions")
        self.flat = s * s * special
        lin = weight_init(init, relu=False)
        self.fc = dense(self.flat, fc, init=lin, rngs=rngs)
        self.lstm1 = CaffeLSTM(fc, lstm_hidden, init=init, rngs=rngs)
        self.lstm2 = CaffeLSTM(lstm_hidden, lstm_hidden, init=init, rngs=rngs)
        self.fc_final = dense(lstm_hidden, 3 * J, init=lin, rngs=rngs)

    def encode(self, feats):
        """``[N, h, w, C]`` -> ``[N, fc]`` (the per-frame part)."""
        x = jax.nn.relu(self.special_2(jax.nn.relu(self.special_1(feats))))
        for layer in (self.fa_1, self.fa_2):
            x = jax.nn.relu(layer(x))
            x = max_pool(x) if self.fa_pool else x
        return self.fc(x.reshape(x.shape[0], -1))

    def temporal_model(self, z, cont, state=None):
        """``z [B, T, fc]`` -> ``([B, T, 48], LSTM1's final state)``; ``state``: LSTM1's
        initial state (streaming across clips)."""
        h1, s1 = self.lstm1(z, cont, state)
        if self.temporal == "stacked":
            h2, _ = self.lstm2(h1, cont)
        else:
            flags = cont if self.temporal == "caffe_exact" else backward_flags(cont)
            h2, _ = self.lstm2(h1[:, ::-1], flags)
            h2 = h2[:, ::-1]
        return self.fc_final(h2), s1

    def __call__(self, feats, cont):
        b, t = feats.shape[:2]
        z = self.encode(feats.reshape((b * t,) + feats.shape[2:])).reshape(b, t, -1)
        return self.temporal_model(z, cont)[0]


class Correction(nnx.Module):
    """Psi_C: ``[..., 48] -> [..., 48]``."""

    def __init__(self, hidden=1024, init="caffe", *, rngs):
        self.change_tmp = dense(3 * J, hidden, init=weight_init(init), rngs=rngs)
        self.change = dense(hidden, 3 * J, init=weight_init(init, relu=False), rngs=rngs)

    def __call__(self, x):
        return self.change(jax.nn.relu(self.change_tmp(x)))


class Projection(nnx.Module):
    """Psi_P: ``[..., 48] -> [..., 32]``."""

    def __init__(self, hidden=1024, init="caffe", *, rngs):
        w = weight_init(init)
        self.project_1 = dense(3 * J, hidden, init=w, rngs=rngs)
        self.project_2 = dense(hidden, hidden, init=w, rngs=rngs)
        self.project_3 = dense(hidden, hidden, init=w, rngs=rngs)
        self.project_2d = dense(hidden, 2 * J, init=weight_init(init, relu=False), rngs=rngs)

    def __call__(self, x):
        p1 = jax.nn.relu(self.project_1(x))
        p3 = jax.nn.relu(self.project_3(jax.nn.relu(self.project_2(p1))))
        return self.project_2d(p1 + p3)


def conv_params(c_in, c_out, k) -> int:
    return k * k * c_in * c_out + c_out


def official_param_counts(size=368, fc=1024, lstm=1024, hidden=1024, special=128) -> dict:
    """Parameter counts from the spec's layer list (VGG/CPM front, no belief stages)."""
    counts, c = {"vgg": 0, "cpm": 0}, 3
    layers = front_layers("vgg_cpm")
    n_vgg = sum(len(b) for b in VGG)
    for i, x in enumerate(layers):
        if x != "pool":
            counts["vgg" if i < n_vgg else "cpm"] += conv_params(c, x, 3)
            c = x
    s = size // 8
    for _ in range(2):
        s = (s + 2 - 5) // 2 + 1
    counts["special"] = conv_params(c, special, 3) + conv_params(special, special, 3)
    counts["fa"] = 2 * conv_params(special, special, 5)
    counts["fc"] = s * s * special * fc + fc
    counts["lstms"] = (fc * 4 * lstm + 4 * lstm + lstm * 4 * lstm) + (
        lstm * 4 * lstm + 4 * lstm + lstm * 4 * lstm
    )
    counts["fc_final"] = lstm * 3 * J + 3 * J
    counts["correction"] = (3 * J * hidden + hidden) + (hidden * 3 * J + 3 * J)
    counts["projection"] = (
        (3 * J * hidden + hidden) + 2 * (hidden * hidden + hidden) + (hidden * 2 * J + 2 * J)
    )
    counts["total"] = sum(counts.values())
    return counts


def num_params(module) -> int:
    return int(sum(np.prod(x.shape) for x in jax.tree.leaves(nnx.state(module, nnx.Param))))


def feat_size(input_size: int, front: str, widths=()) -> int:
    s = front_stride(front, widths)
    if input_size % s:
        raise ValueError(
            f"data.input_size={input_size} must be a multiple of the front's "
            f"stride {s} (model.front={front!r})"
        )
    return input_size // s
