"""Build lowbit_ext from source: setuptools drives CMake + ninja (see CMakeLists.txt).

    pip install --no-build-isolation .        # or -e . for development

Knobs (environment variables):
  MAX_JOBS            parallel compile jobs (default: number of cores)
  LOWBIT_CUDA         "0" forces a CPU-only build; "1" requires CUDA; unset: CUDA when
                      nvcc and a CUDA build of torch are both present
  LOWBIT_CUDA_ARCHS   CUDA architectures (default "90a": wgmma needs sm_90a)
  LOWBIT_KERNELS      kernel families to build, comma separated (default "all"),
                      e.g. "quant,fp8" for fast iteration on the GPU
  CUDA_HOME           the CUDA toolkit folder (found from nvcc when unset)
  LOWBIT_BUILD_DIR    CMake build folder (default build/cmake)
"""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent


def log(msg):
    print(f"[lowbit_ext] {msg}", flush=True)


def find_cuda_home():
    """The toolkit folder: CUDA_HOME/CUDA_PATH, else the folder a real nvcc lives in.

    nvcc on PATH may be a wrapper script (`exec /usr/local/cuda-13.0/bin/nvcc "$@"`):
    its parent folder is then not a toolkit, so follow the exec line."""
    def is_toolkit(p):
        return p and (Path(p) / "bin" / "nvcc").exists() and (Path(p) / "include" / "cuda_runtime.h").exists()

    for var in ("CUDA_HOME", "CUDA_PATH"):
        if is_toolkit(os.environ.get(var)):
            return os.environ[var]
    nvcc = shutil.which("nvcc")
    if nvcc:
        real = Path(nvcc).resolve()
        if is_toolkit(real.parent.parent):
            return str(real.parent.parent)
        try:
            text = real.read_text(errors="ignore")[:4096]
            m = re.search(r"exec\s+(\S*/bin/nvcc)", text)
            if m and is_toolkit(Path(m.group(1)).parent.parent):
                return str(Path(m.group(1)).parent.parent)
        except OSError:
            pass
    for p in ["/usr/local/cuda"] + sorted(str(p) for p in Path("/usr/local").glob("cuda-*")):
        if is_toolkit(p):
            return p
    return None


def find_cmake():
    """cmake >= 3.26 (CUDA 20 as a language standard): pip's cmake package first."""
    try:
        import cmake  # noqa: F401  (pip install cmake)
        exe = Path(cmake.CMAKE_BIN_DIR) / "cmake"
        if exe.exists():
            return str(exe)
    except ImportError:
        pass
    exe = shutil.which("cmake")
    if exe:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout
        m = re.search(r"(\d+)\.(\d+)", out)
        if m and (int(m.group(1)), int(m.group(2))) >= (3, 26):
            return exe
    raise RuntimeError("lowbit_ext needs cmake >= 3.26: `pip install cmake ninja`")


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        import torch

        torch_dir = Path(torch.__file__).resolve().parent
        want = os.environ.get("LOWBIT_CUDA", "").strip()
        cuda_home = find_cuda_home()
        torch_cuda = torch.version.cuda
        use_cuda = want != "0" and cuda_home is not None and torch_cuda is not None
        if want == "1" and not use_cuda:
            raise RuntimeError(
                f"LOWBIT_CUDA=1 but nvcc/toolkit found: {cuda_home}, torch CUDA: {torch_cuda}")
        if use_cuda:
            log(f"building with CUDA kernels: toolkit {cuda_home}, torch {torch.__version__} (CUDA {torch_cuda})")
        else:
            why = ("LOWBIT_CUDA=0" if want == "0" else
                   "torch is a CPU build" if torch_cuda is None else "no CUDA toolkit (nvcc) found")
            log(f"building a CPU-only library ({why}): reference ops only, no CUDA kernels")

        build_dir = Path(os.environ.get("LOWBIT_BUILD_DIR", ROOT / "build" / "cmake"))
        build_dir.mkdir(parents=True, exist_ok=True)
        kernels = os.environ.get("LOWBIT_KERNELS", "all").replace(",", ";")
        args = [
            f"-DTORCH_INSTALL_PREFIX={torch_dir}",
            f"-DTORCH_CXX11_ABI={int(torch._C._GLIBCXX_USE_CXX11_ABI)}",
            f"-DLOWBIT_ENABLE_CUDA={'ON' if use_cuda else 'OFF'}",
            f"-DLOWBIT_KERNELS={kernels}",
            f"-DLOWBIT_CUDA_ARCHS={os.environ.get('LOWBIT_CUDA_ARCHS', '90a')}",
            f"-DLOWBIT_OUTPUT_DIR={build_dir}",
            f"-DPython_EXECUTABLE={sys.executable}",
            "-DCMAKE_BUILD_TYPE=Release",
        ]
        env = dict(os.environ)
        if use_cuda:
            # torch's config runs the old FindCUDA too, which looks from the nvcc on PATH
            # (possibly a wrapper outside the toolkit): point every finder at the toolkit.
            args += [f"-DCMAKE_CUDA_COMPILER={cuda_home}/bin/nvcc", f"-DCUDAToolkit_ROOT={cuda_home}",
                     f"-DCUDA_TOOLKIT_ROOT_DIR={cuda_home}"]
            env["CUDA_HOME"] = cuda_home
            env["PATH"] = f"{cuda_home}/bin" + os.pathsep + env.get("PATH", "")
            # torch's default arch list holds archs nvcc 13 rejects; our kernels pick
            # their own archs through CMAKE_CUDA_ARCHITECTURES.
            env.setdefault("TORCH_CUDA_ARCH_LIST", "9.0a")
            major = torch_cuda.split(".")[0]
            wheel_cuda = Path(sys.modules["torch"].__file__).resolve().parent.parent / "nvidia" / f"cu{major}"
            if (wheel_cuda / "include").is_dir():
                args.append(f"-DLOWBIT_EXTRA_CUDA_INCLUDE={wheel_cuda / 'include'}")
            nvrtc = next(iter(sorted((wheel_cuda / "lib").glob("libnvrtc.so.*"))), None) if (wheel_cuda / "lib").is_dir() else None
            if nvrtc and not (Path(cuda_home) / "lib64" / "libnvrtc.so").exists():
                args.append(f"-DCUDA_nvrtc_LIBRARY={nvrtc}")
        try:
            import ninja  # noqa: F401
            args.append("-GNinja")
            env["PATH"] = ninja.BIN_DIR + os.pathsep + env.get("PATH", "")
        except ImportError:
            if shutil.which("ninja"):
                args.append("-GNinja")
        cmake = find_cmake()
        subprocess.run([cmake, "-S", str(ROOT), "-B", str(build_dir)] + args, check=True, env=env)
        jobs = os.environ.get("MAX_JOBS") or str(os.cpu_count() or 1)
        subprocess.run([cmake, "--build", str(build_dir), "-j", jobs], check=True, env=env)
        # The library is a plain shared object of ops (loaded by torch.ops.load_library),
        # placed where setuptools expects the extension module.
        target = Path(self.get_ext_fullpath(ext.name))
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(build_dir / "_C.so", target)


setup(
    name="lowbit_ext",
    version="0.1.0",
    description="Low-bit (int4, int8, fp8, MX) matmul kernels for NVIDIA Hopper as torch custom ops",
    packages=find_packages(include=["lowbit_ext", "lowbit_ext.*"]),
    ext_modules=[Extension("lowbit_ext._C", sources=[])],
    cmdclass={"build_ext": CMakeBuild},
    python_requires=">=3.10",
    install_requires=["torch>=2.11"],
    zip_safe=False,
)
