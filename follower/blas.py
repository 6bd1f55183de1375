"""One BLAS thread for the follower, set before numpy loads OpenBLAS.

With other work running on a small machine, OpenBLAS's spinning threads fight the
other processes (a covariance of the index was over a hundred times slower with two
threads than with one; docs/benchmarks.md, "Measurements behind settings in the
code"), and the follower's per-update products are far too small to gain from threads. Imported first by every follower
command module; an explicit OPENBLAS_NUM_THREADS from the user wins.
"""

import os

for _var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
