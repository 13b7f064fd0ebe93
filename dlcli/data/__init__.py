"""Datasets: a registered loader returns a :class:`~dlcli.data.table.Table` of numpy arrays;
:func:`~dlcli.data.prepare.prepare` splits, scales and turns it into tensors."""
