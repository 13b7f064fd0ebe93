"""Sweeps: many runs of one config over a search space, kept in an Optuna study.

space (Hydra sweep syntax -> Optuna distributions) -> study (sweep folder, storage, what is left to run)
-> launch (one ``dlcli train`` subprocess per trial) -> driver (N at once, ask/tell, live table)
"""
