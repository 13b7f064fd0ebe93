"""dlcli: declarative, config-driven deep-learning training from the command line."""

__version__ = "0.1.0"
