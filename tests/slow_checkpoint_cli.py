"""`ganlab` with every checkpoint write slowed down after its bytes are written (before fsync and rename), so
that a test's SIGKILL can land in the middle of one. Usage: python tests/slow_checkpoint_cli.py train ..."""

import sys
import time

import torch

DELAY_S = 0.3
_real_save = torch.save


def _slow_save(obj: object, f: object, *args: object, **kwargs: object) -> None:
    _real_save(obj, f, *args, **kwargs)
    time.sleep(DELAY_S)


torch.save = _slow_save

if __name__ == "__main__":
    from ganlab.cli import main

    main(sys.argv[1:])
