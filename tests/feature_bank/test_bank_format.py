"""``feature_bank/bank_format.py``: the metadata of a store of an older
format."""
import lmdb
import pytest

from hallucinet_plugin.feature_bank import FeatureBank


def test_a_version_2_store_says_how_to_convert(tmp_path):
    old = tmp_path / 'old.lmdb'
    env = lmdb.open(str(old), subdir=True)
    with env.begin(write=True) as txn:
        txn.put(b'__meta__', b'{}')
    env.close()
    with pytest.raises(ValueError, match='version-2 .*convert_teacher_bank'):
        FeatureBank(str(old)).meta
