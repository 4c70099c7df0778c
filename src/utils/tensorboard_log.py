"""TensorBoard event files of a training run, for watching it live (`tensorboard --logdir`).

Written on the host, outside the compiled step, by rank 0 with the global step: the losses,
both learning rates and the seconds per step at each --print_interval, the validation metrics,
each epoch's sample grid, the resolved flags as text and, at the end, as hparams with the final
metrics. Summaries are built by tensorboardX; events are written in this thread, so that
`flush()` is a barrier: what precedes a resume state is on disk before the state is (the
asynchronous SummaryWriter's flush leaves queued events unwritten).

A run marks where its events start with a SessionLog START at `purge_step`: TensorBoard and
its event reader drop the events at that step and later that earlier files hold. A resumed run
purges from the step after its resume state, so the steps a killed run logged past it and
the resumed run trains again appear once; a new run purges from step 0.
"""
import os
import time

import yaml
from tensorboardX.event_file_writer import EventsWriter
from tensorboardX.proto.event_pb2 import Event, SessionLog
from tensorboardX.summary import hparams, image, scalar, text

from src.utils.files import growing_file

# How stale the files may be on disk while TensorBoard watches them.
FLUSH_SECONDS = 30
CONFIG_TAG = "config"


def _hparam_value(value):
    """HParams take numbers, strings and booleans: other values (None, lists) as their text."""
    return value if isinstance(value, (bool, int, float, str)) else str(value)


class TrainingBoard:
    def __init__(self, directory, start_step):
        os.makedirs(directory, exist_ok=True)
        # The process id keeps two runs' files apart when they start within the same second.
        with growing_file(directory):
            self.events = EventsWriter(os.path.join(directory, "events"), f".{os.getpid()}")
        self.path = self.events._file_name  # tensorboardX names the file; it keeps the name here only
        self.flushed_at = time.monotonic()
        self.flags, self.metric_tags = {}, []
        self._write(start_step + 1 if start_step else 0, session_log=SessionLog(status=SessionLog.START))

    def _write(self, step, **fields):
        with growing_file(self.path):
            self.events.write_event(Event(wall_time=time.time(), step=step, **fields))
        if time.monotonic() - self.flushed_at > FLUSH_SECONDS:
            self.flush()

    def _scalars(self, step, values):
        for tag, value in values.items():
            self._write(step, summary=scalar(tag, float(value)))

    def start(self, step, flags):
        """The resolved flags {name: value}, as YAML (the config.yaml beside the checkpoints)."""
        self.flags = flags
        listing = yaml.safe_dump(flags, sort_keys=False)
        block = "".join(f"    {line}\n" for line in listing.splitlines())  # a Markdown code block
        self._write(step, summary=text(CONFIG_TAG, block))

    def progress(self, step, losses, learning_rates, seconds_per_step):
        """losses, learning_rates: {name: value}."""
        values = {f"loss/{name}": value for name, value in losses.items()}
        values.update({f"lr/{name}": value for name, value in learning_rates.items()})
        values["time/seconds_per_step"] = seconds_per_step
        self._scalars(step, values)
        if not self.metric_tags:  # what hparams report when no validation runs
            self.metric_tags = [f"loss/{name}" for name in losses]

    def validation(self, step, means):
        values = {f"val/{name}": value for name, value in means.items()}
        self._scalars(step, values)
        self.metric_tags = list(values)

    def samples(self, step, grid_hwc):
        """The epoch's input | generated | target grid (uint8 RGB)."""
        self._write(step, summary=image("samples", grid_hwc, dataformats="HWC"))

    def finish(self, step):
        """The flags as hparams; the HParams dashboard shows, as the run's metrics, the last value of
        the validation metrics (the losses when there was no validation)."""
        experiment, session_start, session_end = hparams(
            {name: _hparam_value(value) for name, value in self.flags.items()},
            dict.fromkeys(self.metric_tags, 0.0))
        for summary in (experiment, session_start, session_end):
            self._write(step, summary=summary)

    def flush(self):
        with growing_file(self.path):
            self.events.flush()
        self.flushed_at = time.monotonic()

    def close(self):
        with growing_file(self.path):
            self.events.close()
