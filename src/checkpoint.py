"""Checkpoints: architecture records, the resume state, and clear load errors.

A checkpoint records the flags that shaped its network (`arch`, JSON) so that loading it into a
differently configured network names the difference instead of failing on a tensor shape; a
generator checkpoint also records every training flag inference needs (`config`, JSON: model,
channels, direction, formats, normalisation, FITS settings), so that eval and export need no
flags but the checkpoint. Each training run writes its whole resolved configuration to
`config.yaml` beside the checkpoints (src/config/parse.py). Records written with older flag names
(n_gf, pad_mode, LAMBDA_L1, ...) are read in the current vocabulary.
The resume state (`train_state_<step>.ckpt`: both networks, both optimisers, loss scale) is
committed by writing `resume.json`, which names it, last; the state it replaces is removed only
then. A run killed, or stopped by a full disk, at any moment resumes from the state resume.json
names, whole and of the step it records.
"""
import contextlib
import json
import logging
import os
import re

import mindspore as ms

from src.config import migrate
from src.utils.errors import UserError
from src.utils.files import atomic_path, atomic_write_text

RESUME_FILE = "resume.json"
STATE_PREFIX = "train_state"


def atomic_save(network, path, extra=None):
    """Save `network`'s parameters to `path` atomically (the temporary name keeps ".ckpt", which
    save_checkpoint would otherwise append)."""
    size = sum(param.nbytes for param in network.get_parameters())
    with _quiet_mindspore("Failed to save the checkpoint file"), atomic_path(path, size) as tmp:
        # crc_check: a CRC32 of the contents, which read_checkpoint verifies (a flipped bit).
        ms.save_checkpoint(network, tmp, append_dict=extra, crc_check=True)


@contextlib.contextmanager
def _quiet_mindspore(prefix):
    """Drop MindSpore's log line that guesses at a failed save's or load's cause: the error raised
    after it, with the file named, says what happened."""
    mindspore_logger = logging.getLogger(f"ME.mindspore.log.{os.getpid()}")
    def drop(record):
        return not record.getMessage().startswith(prefix)
    mindspore_logger.addFilter(drop)
    try:
        yield
    finally:
        mindspore_logger.removeFilter(drop)


def save_network(network, path, arch, config=None, palette=None):
    """Save with the architecture record and, for a generator, the training flags inference needs
    and the label colours of its inputs (src/dataset/palette.py), if they are a label map."""
    extra = {"arch": json.dumps(arch, sort_keys=True)}
    if config is not None:
        extra["config"] = json.dumps(config, sort_keys=True)
    if palette is not None:
        extra["palette"] = json.dumps(palette)
    atomic_save(network, path, extra)


def read_recorded_arch(path, what="--ckpt"):
    """The architecture flags a checkpoint records ({} for one that records none), without its weights."""
    try:
        entries = ms.load_checkpoint(path, choice_func=lambda name: name == "arch")
    except (ValueError, RuntimeError, OSError, TypeError):
        entries = read_checkpoint(path, what)
    try:
        return migrate(json.loads(str(entries["arch"]))) if "arch" in entries else {}
    except ValueError:
        raise UserError(f"{what} {path}: its architecture record is not valid JSON") from None


def read_recorded_config(path, what="--ckpt"):
    """The training flags a generator checkpoint records, or None for a checkpoint written before
    checkpoints recorded them. Reads only that entry, not the weights."""
    return _recorded_json(path, what, "config", "configuration")


def read_recorded_palette(path, what="--ckpt"):
    """The input palette a generator checkpoint records, or None (not a label-map model, or a
    checkpoint written before checkpoints recorded palettes)."""
    return _recorded_json(path, what, "palette", "input palette")


def _recorded_json(path, what, entry, description):
    try:
        entries = ms.load_checkpoint(path, choice_func=lambda name: name in (entry, "arch"))
    except (ValueError, RuntimeError, OSError, TypeError):
        # Neither entry (a checkpoint from elsewhere) or unreadable: the full read says which.
        entries = read_checkpoint(path, what)
    if entry not in entries:
        return None
    try:
        return json.loads(str(entries[entry]))
    except ValueError:
        raise UserError(f"{what} {path}: its recorded {description} is not valid JSON") from None


def read_checkpoint(path, what="--ckpt"):
    """The parameter dict of a checkpoint file, or UserError naming the file (and, for a damaged
    `Name_<n>.ckpt`, the newest whole one of an earlier n beside it)."""
    if not path:
        raise UserError(f"{what} is required")
    if not os.path.isfile(path):
        raise UserError(f"{what} {path}: no such file")
    try:
        return _load_verified(path)
    except (ValueError, RuntimeError, OSError, TypeError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        problem = ("damaged: its CRC32 does not match its contents (a flipped bit, or a partial copy)"
                   if "crc check" in str(err.__cause__) else f"not a readable MindSpore checkpoint ({first_line})")
        raise UserError(f"{what} {path}: {problem}{_whole_predecessor(path)}") from None


def _load_verified(path):
    """ms.load_checkpoint, verifying the CRC32 where the file carries one (checkpoints written
    before they did, or elsewhere, load as before)."""
    with open(path, "rb") as handle:
        handle.seek(max(0, os.path.getsize(path) - 17))
        has_crc = handle.read(7) == b"crc_num"
    with _quiet_mindspore("Failed to read the checkpoint file"):
        return ms.load_checkpoint(path, crc_check=has_crc)


def _whole_predecessor(path):
    match = re.fullmatch(r"(.*_)(\d+)\.ckpt", os.path.basename(path))
    if not match:
        return ""
    directory = os.path.dirname(os.path.abspath(path))
    older = []
    for name in os.listdir(directory):
        other = re.fullmatch(re.escape(match.group(1)) + r"(\d+)\.ckpt", name)
        if other and int(other.group(1)) < int(match.group(2)):
            older.append((int(other.group(1)), name))
    for _, name in sorted(older, reverse=True):
        if _is_whole(os.path.join(directory, name)):
            return f"; {os.path.join(directory, name)} beside it is whole"
    return ""


def _is_whole(path):
    """Whether the checkpoint at `path` loads (its CRC32 verified where it carries one)."""
    try:
        _load_verified(path)
        return True
    except (ValueError, RuntimeError, OSError, TypeError):
        return False


def _fresh_start_hint(ckpt_dir):
    """Only one resume state is kept; the newest whole epoch checkpoints can still seed a new run."""
    epochs = sorted((int(m.group(1)) for m in (re.fullmatch(r"Generator_(\d+)\.ckpt", name)
                                                for name in os.listdir(ckpt_dir)) if m), reverse=True)
    for epoch in epochs:
        pair = [os.path.join(ckpt_dir, f"{net}_{epoch}.ckpt") for net in ("Generator", "Discriminator")]
        if not all(map(_is_whole, pair)):
            continue
        return (f"; the epoch-{epoch} checkpoints beside it are whole: start a new run from them with "
                f"--pretrained_G {pair[0]} --pretrained_D {pair[1]} (the optimiser state is lost)")
    return ""


def _arch_mismatch(saved, expected):
    saved = migrate(saved)
    return [f"{key}={saved[key]} (this run: {expected[key]})"
            for key in sorted(expected) if key in saved and saved[key] != expected[key]]


def load_network(network, path, arch, what="--ckpt", recomputed=()):
    """Load a checkpoint into `network`, first checking it was made for the same architecture.

    Parameters whose names end with one of `recomputed` are left as the network has them.
    """
    params = read_checkpoint(path, what)
    params = {k: v for k, v in params.items() if not k.endswith(tuple(recomputed)) or k == "arch"}
    saved_arch = params.pop("arch", None)
    if saved_arch is not None:
        mismatch = _arch_mismatch(json.loads(saved_arch), arch)
        if mismatch:
            raise UserError(f"{what} {path} was trained with another architecture: "
                            + ", ".join(mismatch) + "; pass the same flags as in training")
    _check_shapes(network, params, path, what, recomputed)
    ms.load_param_into_net(network, params, strict_load=True)


def _check_shapes(network, params, path, what, recomputed):
    """For checkpoints without an arch record: name the first parameter that does not fit."""
    own = {k: v for k, v in network.parameters_dict().items() if not k.endswith(tuple(recomputed))}
    missing = [name for name in own if name not in params]
    if missing:
        raise UserError(f"{what} {path} does not fit this network: it has no parameter "
                        f"{missing[0]!r} ({len(missing)} missing); is it a checkpoint of another "
                        "network or architecture?")
    # Biases the network lacks would be dropped silently by load_param_into_net: U-Net checkpoints
    # from before the encoder's outermost and innermost convolutions lost theirs (batch norm).
    extra = [name for name in params if name.endswith(".bias") and name not in own]
    if extra:
        raise UserError(f"{what} {path} does not fit this network: it has {extra[0]!r}, which this "
                        "network does not (a U-Net checkpoint from before its batch-norm encoder lost the "
                        "outermost and innermost biases? retrain it)")
    for name, param in own.items():
        if tuple(params[name].shape) != tuple(param.shape):
            raise UserError(f"{what} {path} does not fit this network: {name} has shape "
                            f"{tuple(params[name].shape)} there and {tuple(param.shape)} here "
                            "(different ngf, depth, channels or norm?)")


def save_resume_state(ckpt_dir, train_step, step, arch):
    """Write the full training state after global step `step`, commit it in resume.json, then
    remove the states it replaces."""
    state = f"{STATE_PREFIX}_{step}.ckpt"
    atomic_save(train_step, os.path.join(ckpt_dir, state), {"arch": json.dumps(arch, sort_keys=True)})
    atomic_write_text(os.path.join(ckpt_dir, RESUME_FILE),
                      json.dumps({"step": step, "state": state, "arch": arch}, indent=1))
    for name in os.listdir(ckpt_dir):
        if name.startswith(STATE_PREFIX) and name.endswith(".ckpt") and name != state:
            os.remove(os.path.join(ckpt_dir, name))


def resume_state_path(ckpt_dir):
    """The state file resume.json commits (None without one)."""
    try:
        with open(os.path.join(ckpt_dir, RESUME_FILE), encoding="utf-8") as handle:
            return os.path.join(ckpt_dir, json.load(handle)["state"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def load_resume_state(ckpt_dir, train_step, arch):
    """Restore the state saved in `ckpt_dir` into `train_step`; returns the global step reached."""
    resume_path = os.path.join(ckpt_dir, RESUME_FILE)
    if not os.path.isfile(resume_path):
        raise UserError(f"--resume True: no resume state in --ckpt_dir {ckpt_dir} "
                        f"({RESUME_FILE} not found); start without --resume")
    try:
        with open(resume_path, encoding="utf-8") as handle:
            record = json.load(handle)
        step = int(record["step"])
    except (ValueError, KeyError, TypeError) as err:
        raise UserError(f"{resume_path}: damaged resume record ({err})") from None
    state = os.path.join(ckpt_dir, str(record.get("state")))
    if not os.path.isfile(state):
        raise UserError(f"{resume_path} commits {state}, which is missing; start without --resume")
    # The learning-rate arrays follow this run's flags; the optimisers' step counters pick the rate.
    try:
        load_network(train_step, state, arch, what="resume state", recomputed=("learning_rate",))
    except UserError as err:
        damaged = "damaged" in str(err) or "not a readable" in str(err)
        raise UserError(f"{err}{_fresh_start_hint(ckpt_dir) if damaged else ''}") from None
    print(f"resuming from {state} (step {step})", flush=True)
    return step
