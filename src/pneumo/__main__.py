"""`python -m pneumo` runs the same CLI as the `pneumo` console script."""

from pneumo.cli import main

if __name__ == "__main__":
    main()
