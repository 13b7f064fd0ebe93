"""Model builders. Each takes ``in_shape`` (one sample's shape, from the data) and
``out_features`` (from the task) and returns a ``torch.nn.Module`` that maps a batch
of inputs to a batch of outputs (logits or predictions)."""
