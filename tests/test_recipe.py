"""The training recipe: augmentation (random crop, flip, cutout) and label smoothing.

Augmentations are batched tensor operations, deterministic by seed, checked here against
per-image reference code; the data sets' defaults; everything off keeps the trainer's numbers.
"""
from __future__ import annotations

import pytest
import torch

import training
from conftest import TINY
from evolution.config import ConfigError, config_from_dict
from genome import BinaryGenome
from training.augment import (AUGMENTATIONS, Augment, augmentation_generator, cutout, flip,
                              random_crop)
from training.data import DATASETS, recipe_defaults

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = {"dataset": "synthetic",
         "synthetic": {"samples": 64, "num_classes": 3, "image_size": 8, "channels": 2}}
QUICK = {"epochs": 2, "batch_size": 16, "lr": 0.05}
CHAIN = BinaryGenome.from_string("1-01")
EVERYTHING = {"random_crop": 2, "flip": True, "cutout": 3}


def batch(n: int = 6, c: int = 2, size: int = 8) -> torch.Tensor:
    return torch.randn(n, c, size, size, generator=torch.Generator().manual_seed(0))


def gen(seed: int) -> torch.Generator:
    return augmentation_generator(seed, "cpu")


def test_augmentation_is_deterministic_by_seed_and_changes_the_batch():
    x = batch()
    augment = Augment.from_settings(EVERYTHING)
    assert [k for k, _ in augment.steps] == list(AUGMENTATIONS)
    a, b, c = augment(x, gen(1)), augment(x, gen(1)), augment(x, gen(2))
    assert a.shape == x.shape and torch.equal(a, b)
    assert not torch.equal(a, x) and not torch.equal(a, c)
    assert torch.equal(x, batch())  # the input is not changed in place


def test_random_crop_matches_a_per_image_crop():
    x = batch()
    out = random_crop(x, 2, gen(3))
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(len(x)):  # each image is some 8x8 window of its padded self
        windows = [padded[i, :, dy:dy + 8, dx:dx + 8] for dy in range(5) for dx in range(5)]
        assert any(torch.equal(out[i], w) for w in windows)
    shifted = [not torch.equal(out[i], x[i]) for i in range(len(x))]
    assert any(shifted)


def test_flip_mirrors_some_images_whole():
    x = batch(n=16)
    out = flip(x, True, gen(4))
    mirrored = [torch.equal(out[i], x[i].flip(2)) for i in range(len(x))]
    kept = [torch.equal(out[i], x[i]) for i in range(len(x))]
    assert all(m or k for m, k in zip(mirrored, kept)) and any(mirrored) and any(kept)


def test_cutout_zeroes_one_clipped_square_per_image():
    x = batch() + 10.0  # no zeros of its own
    out = cutout(x, 3, gen(5))
    for i in range(len(x)):
        zero = (out[i] == 0).all(0)  # every channel alike
        assert ((out[i] == 0) == zero).all()
        rows, cols = zero.nonzero(as_tuple=True)
        assert 1 <= zero.sum() <= 9 and rows.max() - rows.min() < 3 and cols.max() - cols.min() < 3
        assert torch.equal(out[i][:, ~zero], x[i][:, ~zero])


def test_data_set_defaults_flip_no_digits():
    assert not Augment.from_settings({}, recipe_defaults("digits"))
    assert not Augment.from_settings({}, recipe_defaults("synthetic"))
    assert dict(Augment.from_settings({}, recipe_defaults("cifar10")).steps) == \
        {"random_crop": 4, "flip": True}
    assert "flip" not in recipe_defaults("mnist") and recipe_defaults("mnist")["random_crop"]
    # a setting overrides the default, off included
    assert dict(Augment.from_settings({"flip": False, "cutout": 8},
                                      recipe_defaults("cifar10")).steps) == \
        {"random_crop": 4, "cutout": 8}
    assert DATASETS["cifar10"].labels[0] == "airplane" and DATASETS["npz"].labels is None


def test_trainer_augments_deterministically_and_off_changes_nothing():
    data = training.load_dataset(SMALL)
    plain, _ = training.score(CHAIN, {"channels": [4]}, data, QUICK, seed=0)
    off, _ = training.score(CHAIN, {"channels": [4]}, data,
                            {**QUICK, "random_crop": 0, "flip": False, "cutout": 0,
                             "label_smoothing": 0.0}, seed=0)
    augmented = [training.score(CHAIN, {"channels": [4]}, data, {**QUICK, **EVERYTHING},
                                seed=0)[0] for _ in range(2)]
    other_seed, _ = training.score(CHAIN, {"channels": [4]}, data, {**QUICK, **EVERYTHING},
                                   seed=1)
    drop = ("train_seconds",)
    same = lambda m: {k: v for k, v in m.items() if k not in drop}  # noqa: E731
    assert same(off) == same(plain)
    assert same(augmented[0]) == same(augmented[1])
    assert augmented[0]["train_loss"] != plain["train_loss"]
    assert augmented[0]["train_loss"] != other_seed["train_loss"]


def test_label_smoothing_raises_the_training_loss_floor():
    data = training.load_dataset(SMALL)
    plain, _ = training.score(CHAIN, {"channels": [4]}, data, QUICK, seed=0)
    smooth, _ = training.score(CHAIN, {"channels": [4]}, data,
                               {**QUICK, "label_smoothing": 0.3}, seed=0)
    assert smooth["train_loss"] > plain["train_loss"]


@pytest.mark.parametrize("key,value", [("cutout", -1), ("label_smoothing", 1.0),
                                       ("random_crop", 100), ("flip", "sometimes")])
def test_bad_recipe_settings_name_the_key(key, value):
    with pytest.raises(ConfigError, match=key):
        config_from_dict({**TINY, "evaluation": {**TINY["evaluation"], key: value}})
