"""Teacher feature bank: the frozen teacher, computed once.

With an online teacher every HalluciNet training step decodes a
``clip_len``-frame clip per student frame and runs the 3D teacher on it, so
the 2D student trains at 3D speed. The teacher is frozen: its output depends
on the clip only. :func:`extract_teacher_features` computes it once for a
dense grid of clips of every video and stores it;
:class:`~hallucinet_plugin.datasets.transforms.LoadTeacherFeatures` then
hands each sampled segment the row of the clip that starts nearest to it,
and training decodes only the student frames.

Windows
    A video of ``n`` frames gets windows starting at frames ``0, stride,
    2 * stride, ...``: every such start whose clip (``clip_len`` frames at
    ``frame_interval``, ``span = (clip_len - 1) * frame_interval + 1``
    frames) fits, i.e. up to ``n - span``. A video shorter than a clip gets
    one window at 0 whose frames follow the sampler's ``out_of_bound_opt``,
    exactly as :class:`HalluSampleFrames` bounds its clip. Frames are
    numbered as the decoder numbers them (a sample's ``start_index`` is
    added when reading).

Default stride
    ``max(1, clip_len * frame_interval // 4)``: 4 for the paper's 16-frame
    clips. A sampled clip start is then at most ``stride // 2`` frames from
    a window (2 frames: the stored clip shares 14 of its 16 frames with the
    true one), and at most ``stride - 1`` for the few starts after a
    video's last window.

Teacher view
    Frames are decoded with the train pipeline's decoder (``DecordInit`` /
    ``DecordDecode`` and their arguments), passed through a deterministic
    version of the transforms the pipeline applies to both views before
    :class:`HalluSplitViews` (``Resize`` and ``CenterCrop`` are kept,
    ``RandomCrop`` becomes a ``CenterCrop`` of the same size, ``Flip`` is
    dropped: the bank holds one, unflipped view), resized to
    ``HalluSplitViews.teacher_scale`` and normalised with the data
    preprocessor's ``teacher`` settings. So with random shared crops or
    flips, the bank's target is that of the centre view, not of the
    student's crop. A config may set ``teacher_bank_view`` (a list of
    transforms) to replace the derived ones. The teacher is
    :class:`~hallucinet_plugin.models.FrozenTeacher`, the very module
    HalluciNet's online target runs (``teacher_layer``, ``teacher_pool``).

Storage
    A folder: ``meta.json`` (the settings that make the features what they
    are, the bank's width and largest magnitude, a sha256 of itself) and
    LMDB shards ``shard-000`` ... (a video lives in shard ``crc32(key) %
    shards``; one writer per shard). See :mod:`.bank_format` for an
    entry's layout and docs/user_guides/feature_bank.md for why LMDB.
"""
from .extraction import (
    build_frozen_teacher,
    collect_videos,
    extract_teacher_features,
)
from .geometry import (
    clip_span,
    default_stride,
    nearest_windows,
    window_starts,
)
from .store import FeatureBank, video_key
from .switch import (
    bank_settings,
    check_teacher_bank,
    sha256_file,
    use_teacher_bank,
)
from .writer import FeatureBankWriter

__all__ = [
    'FeatureBank', 'FeatureBankWriter', 'bank_settings', 'check_teacher_bank',
    'build_frozen_teacher', 'clip_span', 'collect_videos', 'default_stride',
    'extract_teacher_features', 'nearest_windows', 'sha256_file',
    'use_teacher_bank', 'video_key', 'window_starts'
]
