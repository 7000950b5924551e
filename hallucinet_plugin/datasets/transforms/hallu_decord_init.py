import io
import os.path as osp
from typing import Dict, Sequence

import numpy as np
from mmaction.datasets.transforms import DecordInit
from mmaction.registry import TRANSFORMS
from mmengine.fileio import FileClient


class VideoReadError(OSError):
    """A video that cannot be read: missing, empty, not a video, truncated
    or corrupt. The message names the file.

    :class:`~hallucinet_plugin.datasets.HalluVideoDataset` can skip videos
    that raise it (``skip_unreadable=True``); every other error stops.
    """


def _first_line(err: BaseException) -> str:
    # decord's messages run over several lines of C++ source locations.
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


class _NamedVideoReader:
    """A decord ``VideoReader`` whose decoding errors name the video.

    ``DecordDecode`` (mmaction2's, unchanged) decodes through it: a frame
    that fails to decode (corrupt or missing data past the header) raises
    :class:`VideoReadError` with the file and the frames asked for, where
    decord raises a ``DECORDError`` that names neither.
    """

    def __init__(self, reader, filename: str) -> None:
        self._reader = reader
        self.filename = filename

    def __len__(self) -> int:
        return len(self._reader)

    def __getattr__(self, name: str):
        # Private names are never delegated: a copy made without __init__
        # (copy, pickle) must not recurse looking for _reader.
        if name.startswith('_'):
            raise AttributeError(name)
        return getattr(self._reader, name)

    def get_batch(self, indices: Sequence[int]):
        try:
            return self._reader.get_batch(indices)
        except Exception as err:
            inds = np.asarray(indices).reshape(-1)
            which = inds.tolist() if len(inds) <= 8 else \
                f'{len(inds)} frames in [{inds.min()}, {inds.max()}]'
            raise VideoReadError(
                f'{self.filename}: cannot decode frames {which} of '
                f'{len(self._reader)}; the video is corrupt or truncated '
                f'(decord: {_first_line(err)})') from err

    def seek(self, pos: int) -> None:
        try:
            self._reader.seek(pos)
        except Exception as err:
            raise VideoReadError(
                f'{self.filename}: cannot seek to frame {pos} of '
                f'{len(self._reader)} (decord: {_first_line(err)})') from err

    def next(self):
        try:
            return self._reader.next()
        except Exception as err:
            raise VideoReadError(
                f'{self.filename}: cannot decode the next frame (decord: '
                f'{_first_line(err)})') from err


@TRANSFORMS.register_module()
class HalluDecordInit(DecordInit):
    """mmaction2's ``DecordInit`` with errors that name the video.

    A drop-in replacement (same arguments, same added keys). mmaction2's
    ``DecordInit`` reads the file into memory and hands decord the bytes,
    so a bad file fails with ``Error reading 4811 bytes...`` or a
    ``DECORDError`` from decord's C++ sources, naming no file. Here a
    missing, empty, unreadable (truncated download, not a video, corrupt
    header) or frameless video raises :class:`VideoReadError` naming the
    file, why, and decord's own first line. Decoding errors later in
    ``DecordDecode`` (frames that are corrupt past a valid header) name the
    file and the frames too: the reader put in ``video_reader`` wraps
    decord's.

    Required keys: ``filename``.

    Added keys: ``video_reader``, ``total_frames``, ``avg_fps``.

    Args:
        io_backend (str): As mmaction2's ``DecordInit``.
        num_threads (int): Decoding threads.
        kwargs (dict): Arguments of the file client.
    """

    def _get_video_reader(self, filename: str) -> _NamedVideoReader:
        # As DecordInit: a name without an extension means an mp4.
        if osp.splitext(filename)[0] == filename:
            filename = filename + '.mp4'
        # Imported on use, as DecordInit does: decord is optional.
        import decord
        if self.file_client is None:
            self.file_client = FileClient(self.io_backend, **self.kwargs)
        try:
            data = self.file_client.get(filename)
        except FileNotFoundError as err:
            raise VideoReadError(f'{filename}: video not found') from err
        except OSError as err:
            raise VideoReadError(f'{filename}: cannot read the file '
                                 f'({err})') from err
        if len(data) == 0:
            raise VideoReadError(f'{filename}: empty file (0 bytes)')
        try:
            reader = decord.VideoReader(
                io.BytesIO(data), num_threads=self.num_threads)
        except Exception as err:
            raise VideoReadError(
                f'{filename}: not a readable video ({len(data)} bytes; '
                'truncated, corrupt, or not a video file). decord: '
                f'{_first_line(err)}') from err
        if len(reader) < 1:
            raise VideoReadError(f'{filename}: the video has no frames')
        return _NamedVideoReader(reader, filename)

    def transform(self, results: Dict) -> Dict:
        reader = self._get_video_reader(results['filename'])
        results['total_frames'] = len(reader)
        results['video_reader'] = reader
        results['avg_fps'] = reader.get_avg_fps()
        return results
