"""benchmarks/render_sanity.py end to end at a tiny size: 32 px crops, 10 steps."""

import json

import jax.numpy as jnp
import numpy as np
from PIL import Image

from benchmarks import render_sanity


def test_decode_inverts_a_target_heatmap():
    kp = jnp.array([[[30.3, 25.7], [40.0, 34.2]]])  # [B=1, J=2, 2] crop px, 64 px crop
    h = w = 16
    cell = kp / render_sanity.STRIDE - 0.5
    u, v = jnp.arange(w)[None, :, None], jnp.arange(h)[:, None, None]
    d2 = (u - cell[0, :, 0]) ** 2 + (v - cell[0, :, 1]) ** 2  # [h, w, J]
    logits = (-d2 / 2.0)[None]
    np.testing.assert_allclose(render_sanity.decode(logits), kp, atol=0.05)
    loss = render_sanity.heatmap_loss(logits, kp, jnp.array([[True, False]]), sigma=1.0)
    assert loss.shape == (1, 2) and float(loss[0, 1]) == 0.0 and float(loss[0, 0]) > 0


def test_main_tiny_run_writes_finite_row_and_png(tmp_path):
    out, png = tmp_path / "rs.jsonl", tmp_path / "rs.png"
    argv = ["--size", "32", "--steps", "10", "--batch", "8", "--width", "8", "--eval", "16",
            "--out", str(out), "--png", str(png)]  # fmt: skip
    row = render_sanity.main(argv)
    [written] = [json.loads(line) for line in out.read_text().splitlines()]
    assert written["steps"] == row["steps"] == 10 and written["size"] == 32
    for s in (written["net"], written["baseline"], written["net"]["lr_oracle"]):
        values = [s["mean_px"], s["median_px"], *(s[f"pck{t}"] for t in (2, 4, 8))]
        assert np.isfinite(values).all() and 0 <= s["pck2"] <= s["pck4"] <= s["pck8"] <= 1
    assert len(written["net"]["per_joint"]["pck4"]) == 17
    assert np.isfinite(written["final_loss"])
    assert Image.open(png).size == (4 * 32 * 4, 4 * 32 * 2)  # 8 tiles at 4x, 2 rows
