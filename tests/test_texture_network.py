"""The feed-forward texture network: sizes, training, determinism, saving, and its command."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from neural_style.app.cli.texture import main
from neural_style.core.images import load_image, read_metadata
from neural_style.net.loading import load_backbone
from neural_style.texture_nets.network import (GeneratorConfig, TextureNetwork, load_texture_network,
                                               read_training, save_texture_network)
from neural_style.texture_nets.training import random_crops, train_stylization_network, train_texture_network

IMAGES = Path(__file__).resolve().parent.parent / "images"


@pytest.fixture(scope="module")
def vgg19():
    return load_backbone("vgg19")


@pytest.fixture(scope="module")
def brick():
    return load_image(IMAGES / "brick.png", 64)


@pytest.mark.parametrize("norm", ["instance", "batch"])
def test_samples_have_the_requested_size_at_sizes_never_trained(norm):
    network = TextureNetwork(GeneratorConfig(scales=4, norm=norm))
    assert network.multiple == 8
    for size in ((37, 53), (64, 64), (8, 200), (1, 1)):
        images = network.sample(size, count=2)
        assert images.shape == (2, 3, *size)
        assert images.min() >= 0 and images.max() <= 1


def test_seeds_make_samples_and_training_deterministic(vgg19, brick):
    config = GeneratorConfig(scales=3)
    runs = [train_texture_network(vgg19, brick, size=32, num_steps=3, batch_size=1, config=config, seed=5)
            for _ in range(2)]
    assert runs[0].history == runs[1].history
    a, b = (r.network.sample((40, 48), count=2, seed=1) for r in runs)
    assert torch.equal(a, b)
    assert not torch.equal(a, runs[0].network.sample((40, 48), count=2, seed=2))
    assert not torch.equal(a[0], a[1])  # two samples of one call differ


@pytest.mark.parametrize("norm", ["instance", "batch"])
def test_a_short_training_lowers_the_loss(vgg19, brick, norm):
    # measured at 32 px, K = 3, batch 2, lr 0.05, 40 steps: 5.0x (instance) and 5.4x (batch)
    result = train_texture_network(vgg19, brick, size=32, num_steps=40, batch_size=2, lr=0.05,
                                   config=GeneratorConfig(scales=3, norm=norm))
    assert len(result.history) == 40 and result.stopped == ""
    assert result.best_loss < result.losses[0] / 2.5
    assert result.best_loss == min(result.losses)
    assert result.params["config"]["norm"] == norm and result.params["backbone"]["name"] == "vgg19"


def test_an_interrupted_training_keeps_its_best_weights(vgg19, brick):
    def stop_at_three(step: int, loss: float) -> None:
        if step == 3:
            raise KeyboardInterrupt

    result = train_texture_network(vgg19, brick, size=32, num_steps=50, batch_size=1,
                                   config=GeneratorConfig(scales=3), callback=stop_at_three)
    assert result.stopped == "interrupted" and len(result.history) == 3
    assert result.best_loss == min(result.losses)


def test_saved_weights_round_trip(tmp_path: Path):
    network = TextureNetwork(GeneratorConfig(scales=3, width=4, norm="batch"))
    assert read_training(save_texture_network(network, tmp_path / "bare.pt")) == {}
    path = save_texture_network(network, tmp_path / "net.pt")
    loaded = load_texture_network(path)
    assert loaded.config == network.config
    assert torch.equal(loaded.sample((30, 30), seed=2), network.sample((30, 30), seed=2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bare.pt", "net.pt"]  # no temporary left


def test_bad_weight_files_say_what_is_wrong(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="train one first"):
        load_texture_network(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="not a texture network"):
        load_texture_network(junk)
    torch.save({"config": {"scales": 3}, "state_dict": {}}, tmp_path / "empty.pt")
    with pytest.raises(ValueError, match="not a texture network"):
        load_texture_network(tmp_path / "empty.pt")


def test_bad_arguments_are_refused_before_training(vgg19, brick):
    with pytest.raises(ValueError, match="norm"):
        GeneratorConfig(norm="layer")
    with pytest.raises(ValueError, match="too small"):
        train_texture_network(vgg19, brick, size=8, num_steps=1)
    with pytest.raises(ValueError, match="num_steps"):
        train_texture_network(vgg19, brick, size=32, num_steps=0)


def test_the_command_trains_then_samples(tmp_path: Path, capsys):
    weights = tmp_path / "brick.pt"
    assert main(["train", str(IMAGES / "brick.png"), "-o", str(weights), "--size", "32", "--steps", "2",
                 "--batch", "1", "--scales", "3"]) == 0
    assert "best batch loss" in capsys.readouterr().out
    training = read_training(weights)  # the weights file carries how they were trained
    assert len(training["history"]) == 2 and training["params"]["size"] == 32 and training["seconds"] > 0
    out = tmp_path / "sample.png"
    assert main(["sample", str(weights), "-o", str(out), "--size", "40", "56", "--count", "2", "--seed", "3"]) == 0
    first = tmp_path / "sample_1.png"
    assert first.exists() and (tmp_path / "sample_2.png").exists()
    assert load_image(first).shape == (1, 3, 40, 56)
    assert read_metadata(first)["seed"] == 3
    assert main(["sample", str(weights), "-o", str(out), "--count", "2"]) == 5  # exists: refused
    assert "--overwrite" in capsys.readouterr().err


def test_the_command_refuses_bad_input(tmp_path: Path, capsys):
    assert main(["sample", str(tmp_path / "none.pt"), "-o", str(tmp_path / "x.png")]) == 3
    assert "train one first" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["train", str(IMAGES / "brick.png"), "-o", str(tmp_path / "net.txt")])
    assert info.value.code == 2 and ".pt" in capsys.readouterr().err
    assert main(["train", str(tmp_path / "missing.png"), "-o", str(tmp_path / "net.pt")]) == 3


@pytest.fixture(scope="module")
def photos():
    return [load_image(IMAGES / name, 96) for name in ("chelsea.png", "astronaut.png", "coffee.png")]


def test_a_stylization_network_keeps_the_photos_size_and_learns(vgg19, photos):
    style = load_image(IMAGES / "starry_night.jpg", 64)
    # measured at 32 px, K = 3, batch 2, lr 0.05, 20 steps: 7.2e8 -> 2.5e8 (2.9x)
    result = train_stylization_network(vgg19, style, photos, size=32, num_steps=20, batch_size=2, lr=0.05,
                                       config=GeneratorConfig(scales=3, content=True))
    assert result.best_loss < result.losses[0] / 1.8
    assert result.params["task"] == "stylization_network" and result.params["photos"] == 3
    out = result.network.stylize(load_image(IMAGES / "chelsea.png", 50), seed=1)
    assert out.shape == (1, 3, 33, 50) and out.min() >= 0 and out.max() <= 1
    with pytest.raises(ValueError, match="stylize"):
        result.network.sample((32, 32))
    with pytest.raises(ValueError, match="sample"):
        TextureNetwork(GeneratorConfig(scales=3)).stylize(photos[0])


def test_each_training_refuses_the_other_kind_of_network(vgg19, brick, photos):
    with pytest.raises(ValueError, match="content=False"):
        train_texture_network(vgg19, brick, size=32, num_steps=1, config=GeneratorConfig(content=True))
    with pytest.raises(ValueError, match="content=True"):
        train_stylization_network(vgg19, brick, photos, size=32, num_steps=1, config=GeneratorConfig())
    with pytest.raises(ValueError, match="at least one photo"):
        train_stylization_network(vgg19, brick, [], size=32, num_steps=1)


def test_random_crops_cover_the_photos_at_the_requested_size(photos):
    crops = random_crops(photos, 6, 40, torch.Generator().manual_seed(0))
    assert crops.shape == (6, 3, 40, 40)
    again = random_crops(photos, 6, 40, torch.Generator().manual_seed(0))
    assert torch.equal(crops, again)


def test_the_command_trains_a_stylization_network_then_stylizes(tmp_path: Path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("chelsea.png", "coffee.png"):
        (folder / name).write_bytes((IMAGES / name).read_bytes())
    weights = tmp_path / "starry.pt"
    assert main(["train", str(IMAGES / "starry_night.jpg"), "--photos", str(folder), str(IMAGES / "brick.png"),
                 "--photo-size", "64", "-o", str(weights), "--size", "32", "--steps", "2", "--batch", "1",
                 "--scales", "3", "--style-weight", "5"]) == 0
    params = read_training(weights)["params"]
    assert params["photos"] == 3 and params["style_weight"] == 5.0  # a folder of two and one file
    out = tmp_path / "cat.png"
    assert main(["stylize", str(weights), str(IMAGES / "chelsea.png"), "-o", str(out), "--size", "48"]) == 0
    assert max(load_image(out).shape[-2:]) == 48
    assert main(["train", str(IMAGES / "starry_night.jpg"), "--photos", str(tmp_path / "none"), "-o",
                 str(tmp_path / "other.pt")]) == 3
    assert "none does not exist" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["train", str(IMAGES / "starry_night.jpg"), "--photos", str(tmp_path / "empty"), "-o",
                 str(tmp_path / "other.pt")]) == 3
    assert "holds no images" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["train", str(IMAGES / "brick.png"), "--style-weight", "5", "-o", str(weights)])
    assert info.value.code == 2 and "add --photos" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["texture", "stylization"])
def test_any_training_size_is_the_size_trained_at_and_recorded(kind):
    """--size 40 with 5 scales (a multiple of 16 needed): the generator works at 48 px, recorded as
    generated_size, and the VGG sees 40x40 samples, the recorded size; a stylization network trains too."""
    net = load_backbone("random", arch="vgg16", seed=0)
    seen: list[tuple[int, ...]] = []
    net.register_forward_pre_hook(lambda module, args: seen.append(tuple(args[0].shape)))
    style = torch.rand(1, 3, 48, 48, generator=torch.Generator().manual_seed(0))
    if kind == "texture":
        result = train_texture_network(net, style, size=40, num_steps=2, batch_size=2)
    else:
        photos = [torch.rand(1, 3, 50, 60, generator=torch.Generator().manual_seed(1))]
        result = train_stylization_network(net, style, photos, size=40, num_steps=2, batch_size=2)
        assert result.network.stylize(photos[0][..., :37, :41]).shape == (1, 3, 37, 41)
    assert (result.params["size"], result.params["generated_size"]) == (40, 48)
    assert seen[0] == (1, 3, 48, 48)  # the style's targets
    assert set(seen[1:]) <= {(2, 3, 40, 40)} and len(seen) > 2  # every training batch at the recorded size
    assert result.image.shape == (1, 3, 40, 40)
