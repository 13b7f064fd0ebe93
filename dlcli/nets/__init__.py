"""torch ``nn.Module`` implementations of the named architectures.

These modules import torch at the top; only the builders in ``dlcli.models`` import them,
inside their body, so that reading the registry stays light.
"""
