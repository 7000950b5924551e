"""``feature_bank/writer.py``: what the writer refuses to store and the
largest value it keeps."""
import numpy as np
import pytest

from hallucinet_plugin.feature_bank import FeatureBank
from hallucinet_plugin.feature_bank.bank_format import MAX_ABS
from tests.feature_bank.bank_utils import DIM, ramp_track, write_bank


@pytest.mark.parametrize('bad', [np.inf, -np.inf, np.nan, 1e30])
def test_the_writer_refuses_absurd_targets(tmp_path, bad):
    total, feats = ramp_track(400)
    feats = feats.copy()
    feats[3, 1] = bad
    with pytest.raises(ValueError, match='not finite or beyond'):
        write_bank(tmp_path / 'refused.lmdb', {'a.mp4': (total, feats)})


def test_largest_accepted_value_fits_both_dtypes(tmp_path):
    total, feats = ramp_track(400)
    feats = feats.copy()
    feats[0, 0] = MAX_ABS
    store = write_bank(tmp_path / 'edge.lmdb', {'a.mp4': (total, feats)})
    bank = FeatureBank(store)
    assert bank.lookup('a.mp4', np.array([0]))[0][0, 0] == MAX_ABS
    assert feats.shape[1] == DIM
    assert bank.verify() == 1
    bank.close()
