"""The C extension (setuptools' stable way to declare one; everything else is in pyproject.toml).

adapter/_native.c is the per-variant hot path: ids, allele notation, the encoding's fast lane.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "adapter._native",
            sources=["adapter/_native.c"],
            extra_compile_args=["-O2", "-std=c11", "-Wall", "-Wextra"],
        )
    ]
)
