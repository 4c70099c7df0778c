"""The training pipeline: shared crop and flip, deterministic order, sharding by rank."""
import os

import numpy as np
import pytest

from src.config import default_config
from src.dataset.pairs import find_pairs
from src.dataset.pipeline import TrainSource, epoch_order, train_dataset, train_tickets
from src.dataset.transforms import crop_and_flip, resize_chw


def test_crop_and_flip_are_the_same_on_both_sides():
    source = np.arange(3 * 10 * 10, dtype=np.float32).reshape(3, 10, 10)
    target = source * 2 + 1
    flipped = 0
    for seed in range(20):
        a, b = crop_and_flip(source, target, np.random.default_rng(seed), 6, flip=True)
        assert a.shape == (3, 6, 6)
        np.testing.assert_array_equal(b, a * 2 + 1)  # the same window and the same flip
        flipped += a[0, 0, 0] > a[0, 0, 1]
    assert 0 < flipped < 20  # both outcomes happen


def cfg_for(**overrides):
    values = dict(seed=3, batch_size=1, crop_size=32, load_size=36, no_flip=False, direction="AtoB",
                  input_nc=3, output_nc=3, epoch_num=2, num_parallel_workers=1)
    values.update(overrides)
    return default_config(**values)


@pytest.mark.parametrize("num_samples,batch,ranks", [(8, 1, 2), (7, 1, 2), (10, 2, 2), (9, 1, 1), (5, 2, 3)])
def test_ranks_read_distinct_blocks_that_cover_every_sample(num_samples, batch, ranks):
    for epoch in range(3):
        orders = [epoch_order(num_samples, 5, epoch, batch, ranks, r) for r in range(ranks)]
        assert len({len(order) for order in orders}) == 1  # every rank runs the same step count
        seen = np.concatenate(orders)
        assert set(seen) == set(range(num_samples))
        if num_samples % (batch * ranks) == 0:
            assert len(seen) == num_samples  # exactly once
        # global batch k = the ranks' k-th batches, in rank order, = one process with batch*ranks
        single = epoch_order(num_samples, 5, epoch, batch * ranks, 1, 0)
        steps = len(orders[0]) // batch
        interleaved = np.concatenate([orders[r][k * batch:(k + 1) * batch]
                                      for k in range(steps) for r in range(ranks)])
        np.testing.assert_array_equal(interleaved, single)


def test_resuming_mid_epoch_continues_the_same_ticket_sequence():
    cfg = cfg_for(batch_size=2)
    everything = train_tickets(10, cfg, 1, 0, 0, 3)
    np.testing.assert_array_equal(train_tickets(10, cfg, 1, 0, 7, 3), everything[7 * 2:])


def test_samples_depend_only_on_seed_epoch_and_index(ab_dir):
    pairs = find_pairs(ab_dir, "--train_data_dir", default_config())
    cfg = cfg_for()
    source = TrainSource(pairs, cfg, noise_size=16)
    first = source[5]
    again = TrainSource(pairs, cfg, noise_size=16)[5]
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert first[0].shape == (3, 32, 32) and first[2].shape == (16,)
    assert -1.0 <= first[0].min() and first[0].max() <= 1.0
    other_epoch = source[5 + len(pairs)]  # same sample, next epoch: new crop/flip/noise
    assert not np.array_equal(first[2], other_epoch[2])


def test_batches_do_not_depend_on_worker_count(ab_dir):
    pairs = find_pairs(ab_dir, "--train_data_dir", default_config())
    batches = []
    for workers in (1, 2):
        dataset = train_dataset(pairs, cfg_for(num_parallel_workers=workers, batch_size=2), 8)
        batches.append([[t.asnumpy() for t in row] for row in dataset.create_tuple_iterator(num_epochs=1)])
    assert len(batches[0]) == 4  # 4 pairs, batch 2, 2 epochs
    for row_a, row_b in zip(*batches):
        for a, b in zip(row_a, row_b):
            np.testing.assert_array_equal(a, b)


def write_folder_pairs(root, names, target_names=None):
    from PIL import Image
    for side, side_names in (("input", names), ("target", target_names or names)):
        os.makedirs(os.path.join(root, side), exist_ok=True)
        for index, name in enumerate(side_names):
            value = 40 * index + (0 if side == "input" else 100)
            Image.new("RGB", (24, 20), (value, value, value)).save(os.path.join(root, side, name))
    return root


def test_input_and_target_folders_pair_by_file_name(tmp_path):
    from src.dataset.pairs import load_pair
    root = write_folder_pairs(str(tmp_path), ["b.png", "a.png"])
    pairs = find_pairs(root, "--train_data_dir", default_config())
    assert [p.name for p in pairs] == ["a.png", "b.png"]
    source, target = load_pair(pairs[0], cfg_for())
    assert source.shape == target.shape == (3, 20, 24)  # non-square images are fine
    assert target.mean() > source.mean()
    swapped = load_pair(pairs[0], cfg_for(direction="BtoA"))
    np.testing.assert_array_equal(swapped[0], target)


def test_a_file_without_partner_is_named(tmp_path):
    from src.utils.errors import UserError
    root = write_folder_pairs(str(tmp_path), ["a.png", "b.png"], ["a.png"])
    with pytest.raises(UserError, match="no partner in target/, e.g. b.png"):
        find_pairs(root, "--train_data_dir", default_config())


def test_an_ab_image_with_non_square_halves_splits_at_half_its_width(tmp_path):
    """A 192x80 AB image is two 96x80 halves (as the reference pix2pix splits it); training
    crops square --crop_size windows from them under either --resize_or_crop."""
    from PIL import Image
    from src.dataset.pairs import load_pair
    ab = np.zeros((80, 192, 3), np.uint8)
    ab[:, :96] = 50
    ab[:, 96:] = 200
    ab[:, 95, 0] = 0  # the last column of A and the first of B mark the split
    ab[:, 96, 0] = 255
    Image.fromarray(ab).save(tmp_path / "wide.png")
    pairs = find_pairs(str(tmp_path), "--train_data_dir", default_config())
    source, target = load_pair(pairs[0], cfg_for())
    assert source.shape == target.shape == (3, 80, 96)
    assert source[0, :, -1].max() == -1.0 and target[0, :, 0].min() == 1.0
    assert np.all(source[1] < 0) and np.all(target[1] > 0)
    np.testing.assert_array_equal(load_pair(pairs[0], cfg_for(direction="BtoA"))[0], target)
    for resize_or_crop in ("resize_and_crop", "crop"):
        sample = TrainSource(pairs, cfg_for(resize_or_crop=resize_or_crop, padding_size=0, max_rotation_angle=0),
                             noise_size=4)[0]
        assert sample[0].shape == sample[1].shape == (3, 32, 32)


def test_an_ab_image_of_odd_width_is_a_one_line_error_naming_file_and_size(tmp_path):
    from PIL import Image
    from src.dataset.pairs import load_pair
    from src.utils.errors import UserError
    Image.new("RGB", (191, 80)).save(tmp_path / "odd.png")
    with pytest.raises(UserError, match=r"odd\.png: .*width must be even.* 191x80$"):
        load_pair(find_pairs(str(tmp_path), "--train_data_dir", default_config())[0], cfg_for())


def test_resize_stays_in_the_channel_range_where_bicubic_overshoots():
    """A hard black/white edge overshoots under bicubic resampling (to about +-1.02 unclamped);
    the resize keeps each channel within its own range, as the reference's 8-bit resize does,
    and leaves missing pixels missing."""
    edge = np.where(np.arange(40) < 20, -1.0, 1.0).astype(np.float32)
    image = np.stack([np.tile(edge, (40, 1)), 0.5 * np.tile(edge, (40, 1))])
    resized = resize_chw(image, 57)
    assert resized.shape == (2, 57, 57)
    assert resized[0].min() == -1.0 and resized[0].max() == 1.0
    assert resized[1].min() == -0.5 and resized[1].max() == 0.5
    with_gap = image.copy()
    with_gap[:, :5, :5] = np.nan
    assert np.isnan(resize_chw(with_gap, 57)[:, 0, 0]).all()
