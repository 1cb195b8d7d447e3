"""Test setup: four fake CPU devices before JAX initialises, paths to shared data."""

import os
import pathlib

os.environ.setdefault("JAX_PLATFORMS", "cpu")
flags = os.environ.get("XLA_FLAGS", "")
if "xla_force_host_platform_device_count" not in flags:
    os.environ["XLA_FLAGS"] = (flags + " --xla_force_host_platform_device_count=4").strip()

import pytest  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
# Tests compile the same small programs many times: share compiled executables.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(REPO / ".pytest_cache" / "jax_cache"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
SHARED = pathlib.Path(os.environ.get("POSEJAX_SHARED", REPO.parent / "shared"))
CMU_DIR = SHARED / "data" / "cmu-mocap"
CAMERAS_JSON = SHARED / "spec" / "h36m_cameras.json"


@pytest.fixture
def cmu_dir():
    if not (CMU_DIR / "02.asf").exists():
        pytest.skip(f"CMU mocap sample not found at {CMU_DIR} (set POSEJAX_SHARED)")
    return CMU_DIR


@pytest.fixture
def cameras_json():
    if not CAMERAS_JSON.exists():
        pytest.skip(f"{CAMERAS_JSON} not found (set POSEJAX_SHARED)")
    return CAMERAS_JSON
