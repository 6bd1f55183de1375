"""One BLAS thread for the follower, set before numpy loads OpenBLAS.

Measured on the 2-core machines this project runs on, with other work running:
a 56k x 72 covariance took 1.2 s with OpenBLAS's default two threads and 8 ms with
one (spinning BLAS threads fight the other processes), and the follower's per-update
products are far too small to gain from threads. Imported first by every follower
command module; an explicit OPENBLAS_NUM_THREADS from the user wins.
"""

import os

for _var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
