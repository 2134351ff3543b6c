"""``python -m ldm_core.study``: run the study's chapters (see :mod:`ldm_core.study.runner`)."""
from ldm_core.study.runner import main

if __name__ == "__main__":
    raise SystemExit(main())
