"""Layout benchmark: repulsion per backend vs N, multilevel time and time to neighbourhood preservation 0.95
on king grids and zoo graphs, peers on the same graph. The logic lives in ``immersions.layout.benchmark``
(also behind ``immersions bench layout``); run ``python benchmarks/bench_layout.py --help``."""
import sys

from immersions.layout.benchmark import main

if __name__ == "__main__":
    sys.exit(main())
