"""Every config file with every variant combination: the ones that should work build with the
same sections, conflicting and unknown ones fail naming the file and the valid choices; the
package imports without ``sys.path`` edits, by name and by path (as ``--config`` loads it)."""

import importlib.util
import itertools
import os
import pathlib
import subprocess
import sys

import ml_collections
import pytest

import configs
from configs import common

REPO = pathlib.Path(__file__).resolve().parents[1]
NAMES = ("ans", "baseline", "gan_det", "gan_gt", "hourglass", "mdn", "pose_machines")
SECTIONS = {"method", "seed", "data", "model", "loss", "optim", "schedule", "train", "eval",
            "mesh", "init_from"}  # fmt: skip
# the 2D input kind each file gives when none is asked for (CMU: always gt)
DEFAULT_INPUT = {"ans": "det", "baseline": "gt", "gan_det": "det", "gan_gt": "gt", "mdn": "det",
                 "hourglass": "gt", "pose_machines": "det"}  # fmt: skip
IMAGE_ONLY = {
    "hourglass",
    "pose_machines",
}  # trains on rendered SynthPose images: no pose-file sources
PINNED = {"gan_det": "det", "gan_gt": "gt"}  # files whose name fixes the 2D input kind


def combos():
    """Every (size, source, input_2d), each part optional."""
    return itertools.product((None, *common.SIZES), (None, *common.SOURCES), (None, *common.INPUTS))


def valid(name, source, kind):
    pinned = PINNED.get(name)
    if kind and pinned and kind != pinned:
        return False
    if name in IMAGE_ONLY and source not in (None, "synthpose"):
        return False
    return not (source == "cmu_mocap" and (kind or pinned) == "det")  # CMU has no detections


def arg_of(*parts):
    return ",".join(p for p in parts if p) or None


@pytest.mark.parametrize("name", NAMES)
def test_every_valid_combination_builds(name):
    default = configs.get_config(name).to_dict()
    built = 0
    for size, source, kind in combos():
        if not valid(name, source, kind):
            continue
        arg = arg_of(size, source, kind)
        c = configs.get_config(name, arg)
        assert isinstance(c, ml_collections.ConfigDict)
        assert set(c.keys()) == SECTIONS, (name, arg)
        assert c.data.source == (source or "synthpose"), (name, arg)
        want = kind or ("gt" if source == "cmu_mocap" else DEFAULT_INPUT[name])
        assert c.data.input_2d == want, (name, arg)
        sized = configs.get_config(name, size)
        train, model = c.train.to_dict(), c.model.to_dict()
        want_train, want_model = sized.train.to_dict(), sized.model.to_dict()
        if name == "ans":  # epochs in steps follow the source's size; 3DHP's larger alpha
            for d in (train, want_train):
                for k in ("num_steps", "eval_every", "ckpt_every"):
                    d.pop(k)
            model.pop("alpha"), want_model.pop("alpha")
        assert train == want_train
        assert model == want_model
        if size == "smoke":
            assert c.train.num_steps <= 10 and not c.data.via_tfds
        if arg is None:
            assert c.to_dict() == default
        # the order of the parts does not matter; repeating one changes nothing
        parts = [p for p in (size, source, kind) if p]
        for perm in itertools.permutations(parts):
            assert configs.get_config(name, ",".join(perm)).to_dict() == c.to_dict()
        if parts:
            assert configs.get_config(name, ",".join(parts + parts[:1])).to_dict() == c.to_dict()
        built += 1
    # 3 sizes x 5 sources x 3 kinds, less det with CMU and the kind a file's name excludes
    want = {
        "ans": 42,
        "baseline": 42,
        "gan_det": 24,
        "gan_gt": 30,
        "mdn": 42,
        "hourglass": 18,
        "pose_machines": 18,
    }
    assert built == want[name]


def test_image_configs_reject_pose_sources():
    for source in ("h36m", "mpi_inf_3dhp", "cmu_mocap"):
        with pytest.raises(ValueError, match=f"configs/hourglass.py: variant '{source}'.*images"):
            configs.get_config("hourglass", f"quick,{source},gt")
    for stage, weights in (("stage1", (0, 0)), ("stage2", (0.1, 0)), ("stage3", (0.1, 0.01))):
        c = configs.get_config("hourglass", stage)
        assert (c.loss.reg_weight, c.loss.var_weight) == weights  # spec 6
        prev = "" if stage == "stage1" else f"runs/hg_stage{int(stage[-1]) - 1}"
        assert c.init_from.workdir == prev
    with pytest.raises(ValueError, match="choose one stage"):
        configs.get_config("hourglass", "stage1,stage2")


def test_sizes_are_what_they_were():
    """quick / smoke budgets of each file (the README and tests rely on them)."""
    assert configs.get_config("baseline", "quick").train.num_steps == 6000
    assert configs.get_config("mdn", "quick").train.num_steps == 6000
    assert configs.get_config("gan_gt", "quick").train.num_steps == 8000
    assert configs.get_config("gan_det", "quick").to_dict() == {
        **configs.get_config("gan_gt", "quick").to_dict(),
        "data": {**configs.get_config("gan_gt", "quick").data.to_dict(), "input_2d": "det"},
    }
    assert configs.get_config("mdn", "smoke").model.width == 64
    assert configs.get_config("gan_gt", "smoke").train.batch_size == 16
    q = configs.get_config("hourglass", "quick")  # README states these
    assert (q.data.input_size, q.model.features, q.model.num_modules, q.train.batch_size) == (
        64, 64, 1, 16
    )  # fmt: skip
    assert [configs.get_config("hourglass", f"quick,stage{i}").train.num_steps
            for i in (1, 2, 3)] == [3000, 2500, 1000]  # fmt: skip


@pytest.mark.parametrize("name", NAMES)
def test_conflicts_fail_clearly(name):
    path = f"configs/{name}.py"
    with pytest.raises(ValueError, match=f"{path}: choose one size, smoke or quick, not both"):
        configs.get_config(name, "smoke,quick")
    for a, b in itertools.combinations(common.SOURCES, 2):
        with pytest.raises(
            ValueError,
            match=f"{path}: choose one data source, synthpose, h36m, cmu_mocap or "
            "mpi_inf_3dhp, not both",
        ):
            configs.get_config(name, f"quick,{a},{b}")
    with pytest.raises(ValueError, match="not several"):
        configs.get_config(name, "synthpose,h36m,cmu_mocap")
    with pytest.raises(ValueError, match="unknown variant 'huge'"):  # typos first
        configs.get_config(name, "smoke,quick,huge")
    with pytest.raises(ValueError, match=f"{path}: choose one 2D input kind, det or gt, not both"):
        configs.get_config(name, "det,smoke,gt")
    # det with CMU, asked for or pinned by the file (gan_gt rejects det before: see below)
    det_cmu = {"gan_det": ("cmu_mocap,det", "smoke,cmu_mocap"), "gan_gt": ()}
    for arg in det_cmu.get(name, ("cmu_mocap,det",)):
        with pytest.raises(ValueError, match=f"{path}: cmu_mocap has no detections"):
            configs.get_config(name, arg)
    if name in PINNED:
        other = "gt" if PINNED[name] == "det" else "det"
        with pytest.raises(ValueError, match=f"{path}: variant '{other}' contradicts"):
            configs.get_config(name, f"smoke,{other}")


@pytest.mark.parametrize("name", NAMES)
def test_unknown_variant_names_file_and_choices(name):
    for arg in ("huge", "smoke,huge", "Smoke", "quick,h36m,gt,extra"):
        with pytest.raises(ValueError, match=f"unknown variant .* of configs/{name}.py") as e:
            configs.get_config(name, arg)
        for choice in (*common.SIZES, *common.SOURCES, *common.INPUTS):
            assert choice in str(e.value)


def test_parse_variants():
    v = common.parse_variants(" quick , cmu_mocap,gt,", "configs/x.py")
    assert v == common.Variants(size="quick", source="cmu_mocap", input_2d="gt")
    assert common.parse_variants(None, "configs/x.py") == common.Variants()
    assert common.parse_variants("", "configs/x.py") == common.Variants()
    v = common.parse_variants("smoke,wide", "configs/x.py", extra=("wide", "deep"))
    assert v.size == "smoke" and v.extra == {"wide"}
    with pytest.raises(ValueError, match="unknown variant 'tall' of configs/x.py.*wide, deep"):
        common.parse_variants("tall", "configs/x.py", extra=("wide", "deep"))
    assert (
        common.parse_variants("h36m", "configs/x.py", fixed={"input_2d": "det"}).input_2d == "det"
    )


def test_get_config_unknown_name_lists_valid_ones():
    with pytest.raises(KeyError, match=r"unknown config 'gan'.*'ans', 'baseline', 'gan_det'"):
        configs.get_config("gan", "smoke")
    assert sorted(configs.REGISTRY) == list(NAMES)
    on_disk = {p.stem for p in (REPO / "configs").glob("*.py")} - {"__init__", "common"}
    assert on_disk == set(NAMES)  # every config file is reachable by name


def test_no_sys_path_in_configs():
    for p in (REPO / "configs").glob("*.py"):
        assert "sys.path" not in p.read_text(), p


def test_loading_by_path_as_config_flags_does():
    """ml_collections' ``--config`` runs the file by path under another module name."""
    for name in NAMES:
        path = REPO / "configs" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(f"{name}_by_path", path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        assert (
            mod.get_config("smoke,synthpose").to_dict()
            == configs.get_config(name, "smoke,synthpose").to_dict()
        )


def test_import_configs_from_another_directory(tmp_path):
    """``import configs`` and ``--config`` style loading from outside the repo."""
    code = (
        "import configs, importlib.util as u; "
        f"spec = u.spec_from_file_location('c', {str(REPO / 'configs' / 'mdn.py')!r}); "
        "mod = u.module_from_spec(spec); spec.loader.exec_module(mod); "
        "print(configs.get_config('baseline', 'smoke').method, mod.get_config('smoke').method)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.split() == ["baseline", "mdn"]
