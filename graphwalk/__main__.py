"""``python -m graphwalk``: the same command line as ``graphwalk``."""

from graphwalk.cli import console_main

if __name__ == "__main__":
    console_main()
