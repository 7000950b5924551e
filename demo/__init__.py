"""The demos and their synthetic datasets: scripts of the source checkout,
not part of the installed package. Run them from the repository root with
``python -m demo`` (see ``demo/README.md``)."""
