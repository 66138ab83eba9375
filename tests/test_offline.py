"""Nothing reaches out at run time: classifier training and prediction, the GAN and its fakes,
and occlusion maps run with every way of opening a network connection patched to raise."""

from __future__ import annotations

import socket
import urllib.request

import numpy as np
import pytest
import torch
from tiny import SIZE, classifier_config, make_folds, tiny_trainer, write_classifier_cache

from syndface.align.cache import load_cache
from syndface.classify import predict
from syndface.classify.data import ImageSet
from syndface.classify.model import load_classifier, preprocess
from syndface.classify.train import train_classifier
from syndface.gan import fakes, train
from syndface.gan.networks import load_network
from syndface.saliency.occlusion import fold_mean, occlusion_maps, prepare_model


class NetworkUsed(AssertionError):
    pass


@pytest.fixture
def no_network(monkeypatch):
    """socket creation, connection and name lookup all raise NetworkUsed for the test's duration."""

    def refuse(*args, **kwargs):
        raise NetworkUsed(f"network access attempted: {args[:2]}")

    class RefusingSocket(socket.socket):
        def __init__(self, *args, **kwargs):
            refuse(*args)

    monkeypatch.setattr(socket, "socket", RefusingSocket)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    # Code holding the original class (imported before the patch) cannot connect either.
    monkeypatch.setattr(RefusingSocket.__mro__[1], "connect", refuse)
    monkeypatch.setattr(RefusingSocket.__mro__[1], "connect_ex", refuse)


def test_the_patch_catches_a_download(no_network):
    with pytest.raises(NetworkUsed):
        urllib.request.urlopen("http://example.com/weights.pth", timeout=1)


def test_training_prediction_gan_fakes_and_occlusion_run_offline(no_network, tmp_path):
    cache = write_classifier_cache(tmp_path / "cache")
    model_path = train_classifier(classifier_config(cache, epochs=1), tmp_path / "classifier")
    images, index = load_cache(cache)
    test = index[index["split"] == "test"]
    folds, probabilities = predict.fold_probabilities(
        [str(model_path)], ImageSet(images, test["row"].to_numpy()), SIZE, 8, torch.device("cpu")
    )
    assert probabilities.shape == (1, len(test), 4)

    model, _ = load_classifier(model_path)
    x = preprocess(torch.from_numpy(np.ascontiguousarray(images[test["row"].to_numpy()[:2]])))
    maps = fold_mean(occlusion_maps([prepare_model(model, "cpu", False)], x, [0, 1], window=8, stride=8))
    assert maps.shape == (2, SIZE, SIZE) and torch.isfinite(maps).all()

    gan_folds = make_folds()
    trainer, signature = tiny_trainer(gan_folds, kimg=0.004)
    assert train.train_gan(trainer, tmp_path / "gan", signature, snapshot_kimg=0.004, grid_seed=1)
    G, _ = load_network(str(tmp_path / "gan" / "network.pt"))
    manifest = fakes.generate_fakes(G, gan_folds, 0, "blended_55", 0.6, 1, tmp_path / "fakes")
    assert len(manifest) > 0 and all((tmp_path / "fakes" / f"{i}.png").exists() for i in manifest["image_id"][:3])
