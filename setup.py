from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

# rl_zoo3 start-up hook (sb3_sacae/zoo/_hook.py; docs/guide/zoo.md): these files must sit at the root of
# site-packages, next to the packages, where site.py reads .pth (and, from Python 3.15, PEP 829 .start) files.
STARTUP_FILES = ("sb3_sacae_zoo.pth", "sb3_sacae_zoo.start")


class BuildPyWithStartupFiles(build_py):
    """Copy the start-up files to the wheel's root (``pip install -e .`` does not install them: use the launcher)."""

    def run(self) -> None:
        super().run()
        for name in STARTUP_FILES:
            self.copy_file(str(here / name), str(Path(self.build_lib) / name), preserve_mode=False)

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        return [*super().get_outputs(include_bytecode), *(str(Path(self.build_lib) / name) for name in STARTUP_FILES)]


here = Path(__file__).parent
version = (here / "sb3_sacae" / "version.txt").read_text(encoding="utf-8").strip()

# torch must be installed first and pinned by the user's set-up (docs/guide/install.md): an unpinned torch pulls CUDA wheels
install_requires = [
    "stable-baselines3>=2.7,<3.0",
    "sb3-contrib>=2.7,<3.0",
    "torch>=2.4",  # th.is_autocast_enabled(device_type), fused Adam on CPU
    "gymnasium>=1.0",
    "numpy>=1.24",
    "pyyaml>=6.0",
]
extras = {
    "envs": [
        "gymnasium[box2d,mujoco,atari]>=1.0",
        "shimmy[dm-control]>=2.0",
        "mujoco==3.17.0",  # dm_control 1.0.50 breaks with mujoco 4.x
        "opencv-python-headless>=4.8",  # gymnasium's ResizeObservation
    ],
    "zoo": [
        "rl_zoo3>=2.9.2,<2.10",  # the range the start-up hook is tested with (docs/guide/zoo.md)
        "optuna>=4.0",
        "huggingface_hub>=0.20",
        "jinja2",  # huggingface_hub.ModelCard.from_template (the Hub model card)
        "imageio>=2.28",  # replay.mp4 of a Hub push
        "imageio-ffmpeg",
        "matplotlib>=3.7",
        "seaborn",  # rl_zoo3.plots
        "psycopg2-binary",  # Optuna studies on PostgreSQL
        "tqdm",
        "rich",
        "tensorboard",
    ],
    "tests": ["pytest>=8", "pytest-xdist>=3", "hypothesis>=6", "ruff==0.17.6", "black==26.10.1", "mypy==2.4.1"],
    # the documentation site (make docs): Sphinx with MyST Markdown pages, the Furo theme, type hints from signatures
    "docs": ["sphinx>=8,<9", "myst-parser>=4", "furo>=2024.8", "sphinx-autodoc-typehints>=2"],
}
extras["all"] = sorted({req for reqs in (extras["envs"], extras["zoo"]) for req in reqs})

setup(
    name="sb3_sacae",
    version=version,
    description="SAC-AE (Soft Actor-Critic with a pixel autoencoder) for Stable-Baselines3",
    long_description=(here / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.10",
    packages=find_packages(include=["sb3_sacae", "sb3_sacae.*"]),
    py_modules=["_sb3_sacae_zoo_hook"],  # stdlib-only shim the start-up files call (loads sb3_sacae/zoo/_hook.py)
    package_data={"sb3_sacae": ["version.txt", "py.typed"], "sb3_sacae.zoo": ["hyperparams/*.yml", "templates/*.md"]},
    cmdclass={"build_py": BuildPyWithStartupFiles},
    install_requires=install_requires,
    extras_require=extras,
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
