"""Package list for setuptools; everything else is in pyproject.toml.

Why a setup.py: the shipped bundle (``exported/default``: the two ONNX encoders,
config.json, metrics.json and the chorale index) must travel inside the wheel, so
that ``follower replay`` works after ``pip install`` from any folder. It stays where
it is in the checkout (training writes it there, docs and tests point at it) and is
mapped into the package as ``follower/shipped/default``; pyproject.toml's
``packages.find`` cannot add such a mapped folder to the packages it finds.
"""

from setuptools import find_packages, setup

SHIPPED = "follower.shipped.default"

setup(
    packages=find_packages(include=["follower", "follower.*", "training", "training.*"]) + [SHIPPED],
    package_dir={SHIPPED: "exported/default"},
    package_data={SHIPPED: ["*.onnx", "config.json", "metrics.json", "chorales.index.npz"]},
    include_package_data=False,
)
