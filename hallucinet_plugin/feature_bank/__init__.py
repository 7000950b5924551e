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

Storage: LMDB
    The bank is one LMDB environment (a folder holding ``data.mdb`` and
    ``lock.mdb``), chosen because:

    - it is memory-mapped: reads are a page-cache lookup with no
      per-read syscall or decompression, and any number of reader
      processes (data-loader workers on every rank) share the same pages;
      readers open it read-only with ``lock=False, readahead=False``
      (random access; readahead would fill the page cache with rows no
      one asked for), lazily in each worker process, after the fork;
    - writes are ACID transactions: each video's row is committed
      atomically, so an extraction killed at any point (Ctrl-C,
      ``kill -9``, out of memory) leaves only complete entries and a
      re-run computes just the missing ones; LMDB's lock also serialises
      writers from several processes, so ``torchrun`` ranks write into one
      store;
    - it is a single store, not one small file per video (kind to shared
      filesystems, one path to copy), with the metadata inside it.

    HDF5 would need one writer process, and a writer killed mid-write can
    leave the file unreadable; ``.npy`` files per video give atomic renames
    but tens of thousands of files and metadata kept elsewhere.

Layout
    - key: the video's path relative to its dataset's ``data_prefix``
      (the path written in the annotation file), UTF-8;
    - value: a 20-byte header ``<4sIIII`` (magic ``b'HNB2'``, the video's
      frame count, windows, dim, CRC-32 of the values, checked on every
      read) followed by ``windows x dim`` little-endian
      float16 (or float32) values, row-major; row ``i`` is the clip that
      starts at frame ``i * stride``;
    - ``__meta__``: JSON metadata: the teacher config (text), the sha256 of
      the teacher checkpoint, ``clip_len``, ``frame_interval``, ``stride``,
      ``out_of_bound_opt``, ``dim``, ``dtype``, the teacher view, the data
      prefixes, the videos with their window counts, creation info.
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
from .store import FeatureBank, FeatureBankWriter, video_key
from .switch import (
    bank_settings,
    check_teacher_bank,
    sha256_file,
    use_teacher_bank,
)

__all__ = [
    'FeatureBank', 'FeatureBankWriter', 'bank_settings', 'check_teacher_bank',
    'build_frozen_teacher', 'clip_span', 'collect_videos', 'default_stride',
    'extract_teacher_features', 'nearest_windows', 'sha256_file',
    'use_teacher_bank', 'video_key', 'window_starts'
]
