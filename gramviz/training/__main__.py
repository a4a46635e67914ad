"""``python -m gramviz.training --config ...``: train, in one process or one of several under
``torchrun --nproc_per_node=N -m gramviz.training ...``."""

import sys

from .loop import main

if __name__ == "__main__":
    sys.exit(main())
