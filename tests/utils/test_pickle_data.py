"""numpy values and HistoryBuffer objects in checkpoints: refused by every
ordinary read, naming the file and tools/sanitize_checkpoint.py; converted
by it through checked stand-ins, genuine ones exactly, forged ones refused
with the file named; the process never dies by a signal (issue #16's
forged-dtype and HistoryBuffer rows).

The forged files are read in a subprocess: on the allowlist this replaced
(numpy's own ``dtype``/``ndarray``/``HistoryBuffer``), the object-field
files loaded and the process then died by SIGSEGV, and the hostile buffer
broke ``HistoryBuffer.statistics`` process-wide.
"""
import json
import os
import os.path as osp
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer

from hallucinet_plugin.utils import (
    from_plain,
    read_checkpoint,
    sanitize_checkpoint,
)
from hallucinet_plugin.utils.checkpoint_sources import allowlist
from hallucinet_plugin.utils.pickle_data import SAFE_GLOBALS, resolve
from tests.utils.forged_pickles import (
    FORGED,
    HOSTILE_BUFFERS,
    Reduce,
    _reconstruct,
    array_of,
    object_field_dtype,
    save_checkpoint,
)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
ENV = dict(os.environ, PYTHONPATH=REPO)
CASES = {**FORGED, **HOSTILE_BUFFERS}

READ_ALL = r'''
import json, sys
from mmengine.logging import HistoryBuffer
from hallucinet_plugin.utils import read_checkpoint, sanitize_checkpoint
read = read_checkpoint if sys.argv[1] == 'read' else \
    lambda path: sanitize_checkpoint(path, path + '.out')
results = {}
for path in sys.argv[2:]:
    try:
        read(path)
        results[path] = None
    except Exception as err:
        results[path] = f'{type(err).__name__}: {err}'
# Nothing the files held changed the class for later buffers.
results['statistics'] = HistoryBuffer([1.0, 2.0], [1, 1]).statistics('mean')
print(json.dumps(results))
'''


@pytest.fixture(scope='module')
def forged_files(tmp_path_factory):
    root = tmp_path_factory.mktemp('forged')
    return {
        name: save_checkpoint(str(root / f'{name}.pth'), make())
        for name, (make, _) in CASES.items()
    }


def _read_all(how, paths):
    proc = subprocess.run([sys.executable, '-c', READ_ALL, how, *paths],
                          env=ENV, capture_output=True, text=True,
                          timeout=300)
    # A negative return code is a signal (SIGSEGV: -11).
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-3000:])
    results = json.loads(proc.stdout.splitlines()[-1])
    assert results.pop('statistics') == 1.5
    return results


def test_forged_checkpoints_are_refused_naming_the_file(forged_files):
    """An ordinary read allows no numpy or mmengine name at all: refused,
    naming the file and the one-time conversion."""
    results = _read_all('read', forged_files.values())
    for name, path in forged_files.items():
        message = results[path]
        assert message is not None, f'{name} loaded'
        assert message.startswith('RuntimeError: checkpoint ' + path), message
        assert 'numpy' in message or 'HistoryBuffer' in message, message
        assert f'tools/sanitize_checkpoint.py {path} OUT' in message
        # torch's advice to unpickle fully is not repeated.
        assert 'weights_only` set to `False`' not in message


def test_conversion_refuses_forged_checkpoints_naming_the_file(
        forged_files):
    """The conversion reads them through the checked stand-ins: each is
    refused for what is forged in it, and nothing is written."""
    results = _read_all('sanitize', forged_files.values())
    for name, path in forged_files.items():
        message = results[path]
        assert message is not None, f'{name} converted'
        assert message.startswith('RuntimeError: ' + path), message
        assert CASES[name][1] in message, message
        assert not osp.exists(path + '.out')


def test_sanitize_tool_refuses_a_forged_dtype_without_a_signal(
        forged_files, tmp_path):
    out = str(tmp_path / 'clean.pth')
    proc = subprocess.run([
        sys.executable,
        osp.join(REPO, 'tools', 'sanitize_checkpoint.py'),
        forged_files['object-field-array'], out, '--trust'
    ], env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, (proc.returncode, proc.stderr[-3000:])
    assert "refusing numpy dtype 'V8'" in proc.stderr
    assert forged_files['object-field-array'] in proc.stderr
    assert not osp.exists(out)


@pytest.mark.parametrize('name', sorted(HOSTILE_BUFFERS))
def test_from_plain_checks_buffers_like_the_pickled_ones(name):
    make, words = HOSTILE_BUFFERS[name]
    state = make().reduce_value[2]
    plain = {
        '__plain_type__': 'HistoryBuffer',
        'log_history': torch.from_numpy(state['_log_history']),
        'count_history': torch.from_numpy(state['_count_history']),
        'max_length': state['max_length']
    }
    if name in ('lengths-differ', 'negative-length'):
        with pytest.raises(pickle.UnpicklingError, match=words):
            from_plain({'hub': plain})
    else:  # the plain form has no room for methods or extra keys
        assert isinstance(from_plain(plain), HistoryBuffer)


def test_from_plain_refuses_what_to_plain_never_writes():
    with pytest.raises(pickle.UnpicklingError, match='holding list'):
        from_plain({'__plain_type__': 'ndarray', 'data': [1, 2]})
    with pytest.raises(pickle.UnpicklingError, match='2-D|ndarray float32'):
        from_plain({
            '__plain_type__': 'HistoryBuffer',
            'log_history': torch.zeros(2, 2),
            'count_history': torch.zeros(2, 2),
            'max_length': 10
        })
    with pytest.raises(pickle.UnpicklingError, match="unknown.*'Popen'"):
        from_plain({'__plain_type__': 'Popen'})


GENUINE = {
    'f8': np.arange(6.0).reshape(2, 3),
    'f4-fortran': np.asfortranarray(np.arange(6, dtype='f4').reshape(2, 3)),
    'f2': np.array([0.5, -1.0], dtype='f2'),
    'big-endian': np.arange(3, dtype='>i4'),
    'u1': np.arange(3, dtype='u1'),
    'bool': np.array([True, False]),
    'c16': np.array([1 + 2j]),
    'zero-d': np.array(3.5),
    'empty': np.zeros((0, 4), dtype='i8'),
}


SCALARS = {'f8': np.float64(1.25), 'i8': np.int64(-7), 'bool': np.bool_(True)}


@pytest.fixture
def genuine(tmp_path):
    """numpy values and a buffer, as the plugin's earlier versions saved
    buffers: without getattr."""
    buffer = HistoryBuffer(np.array([1.0, 2.5]), np.array([1, 2]), 5)
    path = str(tmp_path / 'genuine.pth')
    state = {k: v for k, v in buffer.__dict__.items()}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(HistoryBuffer, '__getstate__', lambda self: state)
        torch.save(dict(arrays=GENUINE, scalars=SCALARS, buffer=buffer), path)
    return path


def _assert_buffer(got):
    assert isinstance(got, HistoryBuffer) and got.max_length == 5
    np.testing.assert_array_equal(got.data[0], [1.0, 2.5])
    assert got.mean() == pytest.approx(3.5 / 3)  # weighted by counts


def test_genuine_numpy_data_converts_once(genuine):
    with pytest.raises(RuntimeError,
                       match='(?s)genuine.pth.*sanitize_checkpoint.py'):
        read_checkpoint(genuine)
    converted = from_plain(read_checkpoint(sanitize_checkpoint(genuine)))
    for name, array in GENUINE.items():
        got = converted['arrays'][name]
        assert got.dtype == array.dtype.newbyteorder('='), name
        np.testing.assert_array_equal(got, array)
    for name, value in SCALARS.items():  # Python scalars now
        got = converted['scalars'][name]
        assert type(got) is type(value.item()) and got == value, name
    _assert_buffer(converted['buffer'])


def test_stand_ins_rebuild_genuine_numpy_data_exactly(genuine):
    stand_ins = [(obj, name) for name, obj in SAFE_GLOBALS.items()]
    with allowlist(stand_ins):
        loaded = resolve(torch.load(genuine, weights_only=True))
    for name, array in GENUINE.items():
        got = loaded['arrays'][name]
        assert isinstance(got, np.ndarray) and got.dtype == array.dtype, name
        assert got.shape == array.shape, name
        np.testing.assert_array_equal(got, array)
        assert got.flags.writeable
    assert loaded['arrays']['f4-fortran'].flags.f_contiguous
    for name, value in SCALARS.items():
        got = loaded['scalars'][name]
        assert type(got) is type(value) and got == value, name
    _assert_buffer(loaded['buffer'])


def test_records_and_strings_are_refused(tmp_path):
    for name, value in [('record', np.zeros(2, dtype=[('a', 'f4')])),
                        ('text', np.array(['a', 'b']))]:
        path = str(tmp_path / f'{name}.pth')
        torch.save({'meta': value}, path)
        with pytest.raises(RuntimeError, match=f'{name}.pth.*numpy'):
            read_checkpoint(path)
        with pytest.raises(RuntimeError, match=f'{name}.pth.*numpy dtype'):
            sanitize_checkpoint(path, path + '.out')


def test_user_allowlisted_numpy_is_set_aside_and_restored(tmp_path):
    """A user who allowlisted numpy's classes themselves does not make the
    plugin's reads build a forged dtype (it would crash the process)."""
    path = save_checkpoint(str(tmp_path / 'forged.pth'),
                           array_of(object_field_dtype()))
    user = [np.dtype, np.ndarray, _reconstruct]
    with torch.serialization.safe_globals(user):
        with pytest.raises(RuntimeError, match='forged.pth.*_reconstruct'):
            read_checkpoint(path)
        with pytest.raises(RuntimeError, match="numpy dtype 'V8'"):
            sanitize_checkpoint(path, str(tmp_path / 'out.pth'))
        assert set(user) <= set(torch.serialization.get_safe_globals())
    assert np.dtype not in torch.serialization.get_safe_globals()


def test_trust_accepts_getattr_and_nothing_else(tmp_path):
    """A file holding ``getattr`` and ``posix.system``: even with trust,
    refused, and the command never runs."""
    marker = str(tmp_path / 'ran')
    payload = Reduce(os.system, (f'touch {marker}', ))
    path = str(tmp_path / 'evil.pth')
    torch.save({'meta': payload, 'mean': Reduce(getattr, (HistoryBuffer,
                                                          'mean'))}, path)
    with pytest.raises(PermissionError, match=r'evil.pth.*posix\.system'):
        sanitize_checkpoint(path, str(tmp_path / 'out.pth'), trust=True)
    proc = subprocess.run([
        sys.executable,
        osp.join(REPO, 'tools', 'sanitize_checkpoint.py'), path, '--trust'
    ], env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and 'posix.system' in proc.stderr
    assert not osp.exists(marker)


def test_trusted_getattr_reaches_only_the_statistics(tmp_path):
    path = str(tmp_path / 'getattr.pth')
    torch.save({'hub': Reduce(getattr, (HistoryBuffer, '__init__'))}, path)
    with pytest.raises(RuntimeError, match=r"getattr\('HistoryBuffer', "
                       r"'__init__'\)"):
        sanitize_checkpoint(path, str(tmp_path / 'out.pth'), trust=True)
