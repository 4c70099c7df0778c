"""Building a pairs.csv from two folders by a key in the file names, and splitting pairs into
train and test without leaking a group (an active region, an observing day) across the split."""
import csv
import io
import os
import re

import numpy as np

from src.dataset.pairs import PAIRS_CSV, read_pairs_csv
from src.utils.checkpoint import atomic_write_text
from src.utils.errors import UserError


def compile_regex(pattern, flag):
    try:
        regex = re.compile(pattern)
    except re.error as err:
        raise UserError(f"{flag} {pattern!r}: not a regular expression ({err})") from None
    if regex.groups == 0:
        raise UserError(f"{flag} {pattern!r}: needs at least one group (...) that captures the key")
    return regex


def key_of(name, regex):
    """The key a file name carries: the regex's groups joined by '_', or None if it does not match."""
    match = regex.search(name)
    return None if match is None else "_".join(group or "" for group in match.groups())


def keyed_files(folder, regex, flag):
    """{key: file name} of the files of `folder` whose name matches; two files with one key are
    an error naming both."""
    if not os.path.isdir(folder):
        raise UserError(f"{flag} {folder}: no such folder")
    files = {}
    for name in sorted(os.listdir(folder)):
        key = key_of(name, regex)
        if key is None or not os.path.isfile(os.path.join(folder, name)):
            continue
        if key in files:
            raise UserError(f"{flag} {folder}: {files[key]} and {name} both have the key {key!r}; "
                            "make the regular expression capture what tells them apart")
        files[key] = name
    if not files:
        raise UserError(f"{flag} {folder}: no file name matches {regex.pattern!r}")
    return files


def pair_by_key(input_dir, target_dir, input_regex, target_regex):
    """([(key, input name, target name)] sorted by key, input keys without a target, target keys
    without an input)."""
    inputs = keyed_files(input_dir, compile_regex(input_regex, "--key_regex"), "--input_dir")
    targets = keyed_files(target_dir, compile_regex(target_regex, "--target_key_regex"), "--target_dir")
    pairs = [(key, inputs[key], targets[key]) for key in sorted(set(inputs) & set(targets))]
    return pairs, sorted(set(inputs) - set(targets)), sorted(set(targets) - set(inputs))


def write_pairs_csv(path, rows):
    """rows: [(key, input path, target path)], written relative to the CSV's folder."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["key", "input", "target"])
    for key, input_path, target_path in rows:
        writer.writerow([key, *(os.path.relpath(os.path.abspath(p), folder) for p in (input_path, target_path))])
    atomic_write_text(path, text.getvalue())


def make_pairs(input_dir, target_dir, key_regex, target_key_regex, output, progress=print):
    """Pair the two folders by key and write `output` (a pairs.csv); report unpaired files."""
    pairs, lonely_inputs, lonely_targets = pair_by_key(input_dir, target_dir, key_regex,
                                                       target_key_regex or key_regex)
    for side, keys in (("input", lonely_inputs), ("target", lonely_targets)):
        if keys:
            progress(f"warning: {len(keys)} {side} file(s) have no partner and are left out, keys: "
                     + ", ".join(keys[:5]) + (" ..." if len(keys) > 5 else ""))
    if not pairs:
        raise UserError(f"no key is in both --input_dir {input_dir} and --target_dir {target_dir}")
    write_pairs_csv(output, [(key, os.path.join(input_dir, i), os.path.join(target_dir, t)) for key, i, t in pairs])
    progress(f"{len(pairs)} pairs written to {output}")
    return pairs


def split_groups(groups, test_ratio, seed):
    """Indices (train, test): whole groups go to test, in a seeded random order, until it holds
    round(test_ratio * n) samples or more; every group lies on one side only."""
    unique = sorted(set(groups))
    if len(unique) < 2:
        raise UserError(f"only {len(unique)} group(s): a split needs at least two")
    order = np.random.default_rng(seed).permutation(len(unique))
    wanted = max(1, round(test_ratio * len(groups)))
    test_groups, count = set(), 0
    for index in order:
        if count >= wanted or len(test_groups) == len(unique) - 1:
            break
        test_groups.add(unique[index])
        count += groups.count(unique[index])
    test = [i for i, group in enumerate(groups) if group in test_groups]
    train = [i for i, group in enumerate(groups) if group not in test_groups]
    return train, test


def split_pairs(pairs_csv, output_dir, test_ratio, seed, group_regex=None, progress=print):
    """Write output_dir/train/pairs.csv and output_dir/test/pairs.csv from one pairs.csv; with
    `group_regex`, all pairs whose input names share its match stay on one side."""
    if not 0 < test_ratio < 1:
        raise UserError(f"--test_ratio {test_ratio}: must be between 0 and 1")
    pairs = read_pairs_csv(pairs_csv, "--pairs_csv")
    if group_regex:
        regex = compile_regex(group_regex, "--group_regex")
        groups = [key_of(pair.name, regex) for pair in pairs]
        unmatched = [pair.name for pair, group in zip(pairs, groups) if group is None]
        if unmatched:
            raise UserError(f"--group_regex {group_regex!r} does not match {len(unmatched)} input(s), "
                            f"e.g. {unmatched[0]}")
    else:
        groups = [pair.name for pair in pairs]
    train, test = split_groups(groups, test_ratio, seed)
    for split, indices in (("train", train), ("test", test)):
        write_pairs_csv(os.path.join(output_dir, split, PAIRS_CSV),
                        [(groups[i], pairs[i].input_path, pairs[i].target_path) for i in indices])
        progress(f"{split}: {len(indices)} pairs, {len({groups[i] for i in indices})} group(s) -> "
                 f"{os.path.join(output_dir, split, PAIRS_CSV)}")
    return train, test

