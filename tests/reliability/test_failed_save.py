"""A checkpoint that cannot be written (here: a file size limit, as a full
disk or quota would do) stops training naming the file, and leaves no
partial checkpoint beside the good ones. A real ``tools/train.py``
subprocess under ``RLIMIT_FSIZE``."""
import os
import resource
import signal
import subprocess
import sys

import pytest

from tests.conftest import REPO
from tests.tools.test_train_test_resume import CONFIG, data_options

pytestmark = pytest.mark.slow

# Far above the logs and config dumps, far below the student's checkpoint
# (resnet10t with Adam's state: about 60 MB).
LIMIT = 8 << 20


def limit_file_size():
    resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT, LIMIT))
    # Writes past the limit then fail with EFBIG instead of SIGXFSZ.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def test_failed_save_names_the_file_and_leaves_nothing(video_dataset,
                                                       tmp_path):
    work_dir = tmp_path / 'work'
    proc = subprocess.run(
        [sys.executable, 'tools/train.py', CONFIG, '--work-dir',
         str(work_dir), '--cfg-options', *data_options(video_dataset, 1)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=limit_file_size)
    assert proc.returncode != 0
    checkpoint = work_dir / 'epoch_1.pth'
    assert f'saving the checkpoint {checkpoint} failed (File too large); ' \
        'the partial file was removed' in proc.stderr, proc.stderr[-3000:]
    assert not checkpoint.exists()
    assert not [name for name in os.listdir(work_dir)
                if name.endswith('.pth')]
