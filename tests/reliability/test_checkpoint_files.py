"""Damaged and hostile checkpoint files on mmengine's loading path
(``load_from``, ``--resume``, ``init_cfg``), once the plugin's tools have
put their loaders in place: refused naming the file, never with torch's
advice to load it with ``weights_only=False``; a compressed zip that
would expand 1000x is refused before it is decompressed."""
import os
import re
import zipfile

import pytest
import torch
from mmengine.runner import CheckpointLoader

from hallucinet_plugin.utils import (
    read_checkpoint,
    use_safe_checkpoint_loaders,
)


class Payload:
    """Pickled as a call of ``os.getcwd``: only full unpickling calls it."""

    def __reduce__(self):
        return os.getcwd, ()


@pytest.fixture(scope='module', autouse=True)
def safe_loaders():
    use_safe_checkpoint_loaders()


# torch's advice, in the words it uses.
UNSAFE_ADVICE = re.compile(r'weights_only`? *(=|set to) *`?False')


def refusal(path) -> str:
    with pytest.raises(RuntimeError) as info:
        CheckpointLoader.load_checkpoint(str(path), map_location='cpu')
    return str(info.value)


def test_truncated_checkpoint_is_refused_naming_the_file(tmp_path):
    path = tmp_path / 'epoch_2.pth'
    torch.save(dict(state_dict={'w': torch.zeros(1000)}), path)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    message = refusal(path)
    assert str(path) in message
    assert not UNSAFE_ADVICE.search(message), message


def test_hostile_global_is_refused_without_unsafe_advice(tmp_path):
    path = tmp_path / 'evil.pth'
    torch.save(dict(state_dict={}, meta=Payload()), path)
    message = refusal(path)
    assert str(path) in message and 'getcwd' in message
    assert not UNSAFE_ADVICE.search(message), message


def test_compressed_bomb_is_refused_before_decompressing(tmp_path):
    plain = tmp_path / 'plain.pth'
    torch.save(dict(state_dict={'w': torch.zeros(4 << 20)}), plain)
    bomb = tmp_path / 'bomb.pth'
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(
            bomb, 'w', zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info.filename))
    assert bomb.stat().st_size * 100 < plain.stat().st_size
    for read in (read_checkpoint, lambda p: CheckpointLoader.load_checkpoint(
            p, map_location='cpu')):
        with pytest.raises(ValueError, match=r'bomb\.pth.*expand to'):
            read(str(bomb))
    # An ordinary (uncompressed) checkpoint of the same tensor reads.
    assert read_checkpoint(str(plain))['state_dict']['w'].numel() == 4 << 20
