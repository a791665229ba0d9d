"""While training runs, a first SIGTERM or SIGINT asks it to stop at the next checkpoint; a second stops it at once."""

import os
import signal

import pytest
from allennlp.common.util import SigTermReceived

from allennlp_multitask.training.preemption import requested_stop, stop_on_signals


@pytest.mark.parametrize(
    "signum, at_once", [(signal.SIGTERM, SigTermReceived), (signal.SIGINT, KeyboardInterrupt)], ids=["TERM", "INT"]
)
def test_a_first_signal_asks_to_stop_and_a_second_stops_at_once(signum, at_once):
    before = signal.getsignal(signum)
    with stop_on_signals():
        assert requested_stop() is None
        os.kill(os.getpid(), signum)
        assert requested_stop() == signum
        with pytest.raises(at_once):
            os.kill(os.getpid(), signum)
    assert signal.getsignal(signum) is before
    assert requested_stop() is None
