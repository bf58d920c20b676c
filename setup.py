"""configs/ stays at the top of the repository and ships inside the package
as ``reiqa_jax/configs`` (``config_file.find_config`` looks in both)."""
from setuptools import find_packages, setup

setup(packages=find_packages(include=["reiqa_jax", "reiqa_jax.*"]) + ["reiqa_jax.configs"],
      package_dir={"reiqa_jax.configs": "configs"})
