"""For test processes only (tests/test_gpiod_system.py puts this directory on PYTHONPATH):
when VZDIVERT_FAKE_GPIO names a fake /dev, ``import gpiod`` gives the real package over the
shared fake kernel of tests/gpiodfake.py, as the sandbox has no GPIO chip."""

import os
import sys

if os.environ.get("VZDIVERT_FAKE_GPIO"):
    from pathlib import Path

    import gpiodfake

    kernel = gpiodfake.Kernel.load(Path(os.environ["VZDIVERT_FAKE_GPIO"]))
    sys.modules["gpiod._ext"] = gpiodfake.make_ext(kernel)
