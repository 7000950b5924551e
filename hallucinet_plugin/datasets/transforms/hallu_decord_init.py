import contextlib
import io
import logging
import os
import os.path as osp
import re
import sys
import tempfile
import threading
from collections import Counter
from typing import Callable, Dict, Iterator, List, Sequence

import numpy as np
from mmaction.datasets.transforms import DecordInit
from mmaction.registry import TRANSFORMS
from mmengine.fileio import FileClient
from mmengine.logging import print_log

# FFmpeg's log lines start with the component and its address.
_FFMPEG_LINE = re.compile(r'^\[[\w:-]+ @ 0x[0-9a-fA-F]+\]')
_CAPTURE = threading.Lock()
# Decoder messages per video, in this process.
DECODER_ERRORS: Counter = Counter()


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


@contextlib.contextmanager
def _stderr_lines() -> Iterator[List[str]]:
    """The lines written to file descriptor 2 during the block (FFmpeg,
    inside decord, writes there), filled in on exit and passed on to
    stderr unchanged. While another thread captures, nothing is."""
    lines: List[str] = []
    if not _CAPTURE.acquire(blocking=False):
        yield lines
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
        with tempfile.TemporaryFile() as tmp:
            os.dup2(tmp.fileno(), 2)
            try:
                yield lines
            finally:
                os.dup2(saved, 2)
                os.close(saved)
                tmp.seek(0)
                data = tmp.read()
                if data:
                    os.write(2, data)
                lines.extend(data.decode('utf-8', 'replace').splitlines())
    finally:
        _CAPTURE.release()


class _NamedVideoReader:
    """A decord ``VideoReader`` whose decoding errors name the video.

    ``DecordDecode`` (mmaction2's, unchanged) decodes through it: a frame
    that fails to decode (corrupt or missing data past the header) raises
    :class:`VideoReadError` with the file and the frames asked for, where
    decord raises a ``DECORDError`` that names neither.
    """

    def __init__(self, reader, filename: str,
                 decoder_errors: str = 'warn') -> None:
        self._reader = reader
        self.filename = filename
        self.decoder_errors = decoder_errors

    def __len__(self) -> int:
        return len(self._reader)

    def __getattr__(self, name: str):
        # Private names are never delegated: a copy made without __init__
        # (copy, pickle) must not recurse looking for _reader.
        if name.startswith('_'):
            raise AttributeError(name)
        return getattr(self._reader, name)

    def _decode(self, what: str, decode: Callable):
        """``decode()``, with decord's errors and FFmpeg's complaints about
        damaged data (which decord decodes anyway) named by file."""
        with _stderr_lines() as lines:
            try:
                out = decode()
            except Exception as err:
                raise VideoReadError(
                    f'{self.filename}: cannot {what} of {len(self._reader)}'
                    '; the video is corrupt or truncated (decord: '
                    f'{_first_line(err)})') from err
        self._report(what, lines)
        return out

    def _report(self, what: str, lines: List[str]) -> None:
        """Count FFmpeg's lines among ``lines`` (written while asked to
        ``what``) for this video; warn or raise as ``decoder_errors``
        says."""
        complaints = [line for line in lines if _FFMPEG_LINE.match(line)]
        if complaints and self.decoder_errors != 'ignore':
            DECODER_ERRORS[self.filename] += len(complaints)
            message = (
                f'{self.filename}: the decoder reported {len(complaints)} '
                f'errors while asked to {what} '
                f'({DECODER_ERRORS[self.filename]} so far for this video); '
                f'the frames may be damaged. First: {complaints[0]}')
            if self.decoder_errors == 'raise':
                raise VideoReadError(message)
            print_log(message, logger='current', level=logging.WARNING)

    def get_batch(self, indices: Sequence[int]):
        inds = np.asarray(indices).reshape(-1)
        which = inds.tolist() if len(inds) <= 8 else \
            f'{len(inds)} frames in [{inds.min()}, {inds.max()}]'
        return self._decode(f'decode frames {which}',
                            lambda: self._reader.get_batch(indices))

    def seek(self, pos: int) -> None:
        self._decode(f'seek to frame {pos}', lambda: self._reader.seek(pos))

    def next(self):
        return self._decode('decode the next frame', self._reader.next)


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

    Damaged data that FFmpeg still decodes (flipped bytes in a frame)
    gives damaged frames and only FFmpeg's own lines on stderr. Those lines
    are counted per video (:data:`DECODER_ERRORS`) while the video opens
    and during each decode, and, by default, each that produced any logs a
    warning naming the file, the frames and the running count. The count is
    a lower bound: lines decord's decoding thread writes between two calls
    are printed, not counted.

    Required keys: ``filename``.

    Added keys: ``video_reader``, ``total_frames``, ``avg_fps``.

    Args:
        io_backend (str): As mmaction2's ``DecordInit``.
        num_threads (int): Decoding threads.
        decoder_errors (str): ``'warn'`` (default), ``'raise'`` (a
            :class:`VideoReadError`, which ``skip_unreadable`` can skip)
            or ``'ignore'``.
        kwargs (dict): Arguments of the file client.
    """

    def __init__(self, decoder_errors: str = 'warn', **kwargs) -> None:
        if decoder_errors not in ('warn', 'raise', 'ignore'):
            raise ValueError(f"decoder_errors must be 'warn', 'raise' or "
                             f"'ignore', got {decoder_errors!r}")
        super().__init__(**kwargs)
        self.decoder_errors = decoder_errors

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
        # decord starts decoding while it opens the video: FFmpeg's lines
        # from then count too.
        with _stderr_lines() as lines:
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
        named = _NamedVideoReader(reader, filename, self.decoder_errors)
        named._report('open the video', lines)
        return named

    def transform(self, results: Dict) -> Dict:
        reader = self._get_video_reader(results['filename'])
        results['total_frames'] = len(reader)
        results['video_reader'] = reader
        results['avg_fps'] = reader.get_avg_fps()
        return results
