"""Cross-validation (``dlcli cv``): k folds, each an ordinary run, linked by a cv id (the config's ``cv`` node)."""
