"""Suite-wide test settings.

Property tests are derandomized (hypothesis draws the same examples every run) so that CI is
deterministic: a failure found once is found every time, and a green run stays green. Run
`HYPOTHESIS_PROFILE=explore pytest` to search with fresh random examples.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("deterministic", derandomize=True, deadline=None,
                          print_blob=True)
settings.register_profile("explore", deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "deterministic"))
