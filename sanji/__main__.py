"""`python -m sanji …` runs the same command as the installed `sanji` script (handy before the venv's
bin is on PATH). Guarded, so walking the package's modules (tests/test_error_codes.py) runs nothing."""

import sys

from sanji.cli import main

if __name__ == "__main__":
    sys.exit(main())
