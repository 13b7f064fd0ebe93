"""The shipped experiment presets reach what their comments promise."""

from __future__ import annotations

import numpy as np

from dlcli.training.build import load_data
from dlcli.training.train import train


def test_digits_cnn_beats_svc_on_the_same_split(make_config):
    from sklearn.svm import SVC

    composed = make_config("experiment=digits_cnn")
    result = train(composed.config, composed.overrides)
    cnn_acc = result.metrics["test/acc"]
    assert cnn_acc >= 0.99

    # scikit-learn's SVC, side by side: same rows, same scaling, same test split
    prepared = load_data(composed.config)
    (x_train, y_train), (x_test, y_test) = prepared.splits["train"], prepared.splits["test"]
    svc = SVC().fit(x_train.reshape(len(x_train), -1), y_train)
    svc_acc = float(np.mean(svc.predict(x_test.reshape(len(x_test), -1)) == y_test))
    assert 0.95 < svc_acc < cnn_acc


def test_text_gru_learns_the_reviews(make_config):
    composed = make_config("experiment=text_gru", "trainer.max_epochs=6")
    result = train(composed.config, composed.overrides)
    assert result.metrics["test/acc"] >= 0.9
