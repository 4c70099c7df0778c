"""Building a pairs.csv from two folders by a key in the file names or by observation time, and
splitting pairs into train and test without leaking a group (an active region, an observing day)
across the split, at random or chronologically."""
import csv
import io
import os
import re

import numpy as np

from src.dataset.io import has_format, observation_time, read_fits_header
from src.dataset.pairs import INPUT_SEPARATOR, PAIRS_CSV, read_pairs_csv
from src.utils.errors import UserError
from src.utils.files import atomic_write_text
from src.utils.progress import progress_bar


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


# Bars over a folder's files from these counts on, where a scan lasts a second or more: names
# are matched at about 5 us each, FITS headers read at about 1 ms each.
MANY_NAMES, MANY_HEADERS = 200_000, 1000


def scanning(names, flag, unit, many):
    """A bar over the files `names` of `flag`'s folder, drawn only for `many` or more."""
    return progress_bar(names, desc=flag, unit=unit, shown=len(names) >= many)


def keyed_files(folder, regex, flag):
    """{key: file name} of the files of `folder` whose name matches; two files with one key are
    an error naming both."""
    if not os.path.isdir(folder):
        raise UserError(f"{flag} {folder}: no such folder")
    files = {}
    with scanning(sorted(os.listdir(folder)), flag, "file", MANY_NAMES) as names:
        for name in names:
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


def file_time(path, flag):
    """A FITS file's observation time (astropy Time); a file without one is an error naming it."""
    time = observation_time(read_fits_header(path))
    if time is None:
        raise UserError(f"{flag}: {path} has no readable DATE-OBS, DATE_OBS, T_OBS or T_REC")
    return time


def timed_files(folder, flag):
    """[(unix time, file name)] of the FITS files of `folder`, earliest first."""
    if not os.path.isdir(folder):
        raise UserError(f"{flag} {folder}: no such folder")
    names = [name for name in sorted(os.listdir(folder))
             if has_format(name, "fits") and os.path.isfile(os.path.join(folder, name))]
    if not names:
        raise UserError(f"{flag} {folder}: no FITS files to pair by observation time")
    with scanning(names, flag, "header", MANY_HEADERS) as read:
        return sorted((file_time(os.path.join(folder, name), flag).unix, name) for name in read)


def pair_by_time(input_dir, target_dir, tolerance, lead=0.0):
    """As `pair_by_key`, keyed by the input's observation time t (ISO): each input with the
    target observed closest to t + lead, if within `tolerance` seconds; a target serves one
    input at most (the closer one; inputs are matched in time order)."""
    from astropy.time import Time
    inputs, targets = timed_files(input_dir, "--input_dir"), timed_files(target_dir, "--target_dir")
    target_times = np.array([time for time, _ in targets])
    key = lambda time: Time(time, format="unix").utc.isot
    pairs, lonely, taken = [], [], set()
    for time, name in inputs:
        gaps = np.abs(target_times - (time + lead))
        nearest = int(np.argmin(gaps))
        if gaps[nearest] <= tolerance and nearest not in taken:
            taken.add(nearest)
            pairs.append((key(time), name, targets[nearest][1]))
        else:
            lonely.append(key(time))
    unused = [key(time) for index, (time, _) in enumerate(targets) if index not in taken]
    return pairs, lonely, unused


def write_pairs_csv(path, rows):
    """rows: [(key, input path or paths, target path)], written relative to the CSV's folder
    (several input paths joined by INPUT_SEPARATOR)."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["key", "input", "target"])
    for key, input_path, target_path in rows:
        inputs = (input_path,) if isinstance(input_path, str) else input_path
        relative = lambda path: os.path.relpath(os.path.abspath(path), folder)
        writer.writerow([key, INPUT_SEPARATOR.join(map(relative, inputs)), relative(target_path)])
    atomic_write_text(path, text.getvalue())


def make_pairs(input_dir, target_dir, key_regex, target_key_regex, output, progress=print,
               time_tolerance=None, lead_time=0.0):
    """Pair the two folders by key (or, with `time_tolerance`, by observation time) and write
    `output` (a pairs.csv); report unpaired files."""
    if time_tolerance is not None:
        pairs, lonely_inputs, lonely_targets = pair_by_time(input_dir, target_dir, time_tolerance, lead_time or 0.0)
    else:
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
    order = [unique[index] for index in np.random.default_rng(seed).permutation(len(unique))]
    return _split_in_order(groups, order, test_ratio)


def split_chronologically(groups, times, test_ratio):
    """Indices (train, test): the latest groups (by their earliest time) go to test until it
    holds round(test_ratio * n) samples or more, so that the test period follows training."""
    first = {}
    for group, time in zip(groups, times):
        first[group] = min(first.get(group, time), time)
    if len(first) < 2:
        raise UserError(f"only {len(first)} group(s): a split needs at least two")
    return _split_in_order(groups, sorted(first, key=first.get, reverse=True), test_ratio)


def _split_in_order(groups, order, test_ratio):
    """Whole groups, taken in `order`, go to test until it holds round(test_ratio * n) samples
    or more; one group at least stays for training."""
    wanted = max(1, round(test_ratio * len(groups)))
    test_groups, count = set(), 0
    for group in order:
        if count >= wanted or len(test_groups) == len(order) - 1:
            break
        test_groups.add(group)
        count += groups.count(group)
    test = [i for i, group in enumerate(groups) if group in test_groups]
    train = [i for i, group in enumerate(groups) if group not in test_groups]
    return train, test


def split_pairs(pairs_csv, output_dir, test_ratio, seed, group_regex=None, progress=print, chronological=False):
    """Write output_dir/train/pairs.csv and output_dir/test/pairs.csv from one pairs.csv; with
    `group_regex`, all pairs whose input names share its match stay on one side; with
    `chronological`, the latest pairs (the inputs' observation times) go to test."""
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
    if chronological:
        times = [file_time(pair.input_path, "--chronological True").unix for pair in pairs]
        train, test = split_chronologically(groups, times, test_ratio)
    else:
        train, test = split_groups(groups, test_ratio, seed)
    for split, indices in (("train", train), ("test", test)):
        write_pairs_csv(os.path.join(output_dir, split, PAIRS_CSV),
                        [(groups[i], pairs[i].input_files, pairs[i].target_path) for i in indices])
        progress(f"{split}: {len(indices)} pairs, {len({groups[i] for i in indices})} group(s) -> "
                 f"{os.path.join(output_dir, split, PAIRS_CSV)}")
    return train, test

