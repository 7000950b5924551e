"""Pickles built to exhaust the reader, on every pickle the plugin reads
(checkpoints, the message hub restored on resume, MTL-AQA annotations):
each is read, or refused naming its file, in time linear in the file.

The shapes: a web of shared references (``x = [x, x]`` nested 22 and 40
deep: a 2 kB file, 2**40 paths if visited as a tree), ``str`` of such a
web (exponentially many characters from a few hundred bytes), and a list
that holds itself. Each test runs under an alarm, so a regression fails
instead of hanging the suite."""
import pickle
import signal
import time

import pytest
import torch

from hallucinet_plugin.datasets.mtl_aqa_dataset import load_plain_pickle
from hallucinet_plugin.utils import from_plain, read_checkpoint

# Generous for a linear read of a few kB, far below a tree walk of 2**22.
SECONDS = 10


@pytest.fixture(autouse=True)
def alarm():
    def expire(signum, frame):
        raise TimeoutError(f'not done in {SECONDS} s: the reader walks '
                           'shared references as a tree')

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(SECONDS)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def web(depth: int) -> list:
    """``x = [x, x]``, ``depth`` times: ``depth + 1`` distinct lists."""
    node = []
    for _ in range(depth):
        node = [node, node]
    return node


def cycle() -> list:
    node = [1]
    node.append(node)
    return node


class StrOf:
    """Pickles as ``str(value)``: what a hostile annotation file asks."""

    def __init__(self, value):
        self.value = value

    def __reduce__(self):
        return str, (self.value, )


@pytest.mark.parametrize('depth', [22, 40])
def test_checkpoint_with_a_web_of_shared_lists_reads_in_linear_time(
        depth, tmp_path):
    path = str(tmp_path / 'web.pth')
    torch.save(dict(state_dict=dict(w=torch.zeros(2)), meta=web(depth)),
               path)
    assert (tmp_path / 'web.pth').stat().st_size < 20_000
    start = time.perf_counter()
    checkpoint = read_checkpoint(path)
    assert time.perf_counter() - start < SECONDS / 2
    # The sharing survives: the same list, not copies of it.
    meta = checkpoint['meta']
    assert meta[0] is meta[1]


@pytest.mark.parametrize('depth', [22, 40])
def test_message_hub_web_restores_in_linear_time(depth):
    hub = dict(log_scalars=dict(loss=web(depth)))
    restored = from_plain(hub)
    assert restored['log_scalars']['loss'][0] is \
        restored['log_scalars']['loss'][1]


def test_cyclic_checkpoint_is_refused_naming_the_file(tmp_path):
    path = str(tmp_path / 'cycle.pth')
    torch.save(dict(state_dict=dict(w=torch.zeros(2)), meta=cycle()), path)
    with pytest.raises(RuntimeError, match=r'cycle\.pth.*holds itself'):
        read_checkpoint(path)


def test_deep_nesting_is_refused_naming_the_file(tmp_path):
    node = []
    for _ in range(150):  # more than MAX_DEPTH, less than torch.save's
        node = [node]
    path = str(tmp_path / 'deep.pth')
    torch.save(dict(state_dict=dict(w=torch.zeros(2)), meta=node), path)
    with pytest.raises(RuntimeError, match=r'deep\.pth.*nested deeper'):
        read_checkpoint(path)


@pytest.mark.parametrize('depth', [22, 40])
def test_annotation_web_reads_in_linear_time(depth, tmp_path):
    path = tmp_path / 'web.pkl'
    path.write_bytes(pickle.dumps(dict(dives=web(depth)), protocol=2))
    loaded = load_plain_pickle(str(path))
    assert loaded['dives'][0] is loaded['dives'][1]


@pytest.mark.parametrize('depth', [10, 34])
def test_annotation_str_of_a_web_is_refused_naming_the_file(depth, tmp_path):
    path = tmp_path / 'str.pkl'
    path.write_bytes(pickle.dumps(StrOf(web(depth)), protocol=4))
    assert path.stat().st_size < 1000
    with pytest.raises(ValueError, match=r'str\.pkl.*refusing str\(\)'):
        load_plain_pickle(str(path))


def test_annotation_cycle_is_refused_naming_the_file(tmp_path):
    path = tmp_path / 'cycle.pkl'
    path.write_bytes(pickle.dumps(dict(dives=cycle()), protocol=2))
    with pytest.raises(ValueError, match=r'cycle\.pkl.*holds itself'):
        load_plain_pickle(str(path))


def test_plain_values_still_read(tmp_path):
    """What real annotation files hold: sets, complex numbers, strings."""
    path = tmp_path / 'plain.pkl'
    data = {('01', 2): dict(score=1.5, tags={'a', 'b'}, c=complex(1, 2),
                            name='dive')}
    for protocol in (0, 2, 4):
        path.write_bytes(pickle.dumps(data, protocol=protocol))
        assert load_plain_pickle(str(path)) == data
