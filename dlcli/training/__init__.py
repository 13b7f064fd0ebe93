"""Training: task modules, the Trainer, and :func:`~dlcli.training.train.train`."""
