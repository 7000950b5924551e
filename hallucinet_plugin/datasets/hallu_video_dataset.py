import logging
import os.path as osp
from typing import Any, Callable, Dict, List, Optional, Union

from mmaction.datasets import VideoDataset
from mmaction.registry import DATASETS
from mmengine.fileio import exists, list_from_file
from mmengine.logging import print_log

from ..utils.typing_utils import ConfigType
from .transforms.hallu_decord_init import VideoReadError

# Bad lines listed in one error; the count says how many there were.
_MAX_LISTED = 20


def _listing(items: List[str]) -> str:
    """One indented line per item, the first :data:`_MAX_LISTED`."""
    more = [f'... and {len(items) - _MAX_LISTED} more'
            ] if len(items) > _MAX_LISTED else []
    return ''.join(f'\n  {item}' for item in items[:_MAX_LISTED] + more)


@DATASETS.register_module()
class HalluVideoDataset(VideoDataset):
    """mmaction2's ``VideoDataset`` that refuses bad input, naming it.

    Same annotation format and arguments as ``VideoDataset`` (one
    ``<path> <label>`` line per video, ``<path> <label> <label> ...`` with
    ``multi_class``, the columns separated by ``delimiter``), and the same
    samples for a valid list. What differs:

    At start-up (when the dataset is built, before any training):

    - every line is checked and all bad ones are reported together, each
      by file and line number: a wrong column count, a label that is not an
      integer, a negative label, a label ``>= num_classes`` (when
      ``num_classes`` is given), a list mixing labelled and unlabelled
      lines. ``VideoDataset`` raises ``ValueError: invalid literal for
      int()`` or ``too many values to unpack`` without a line, or, for an
      out-of-range label, trains until the loss fails (on GPU, a device
      assert). Blank lines are ignored. Unlabelled lists (a path per line,
      label -1 as in ``VideoDataset``) are accepted in ``test_mode``, and
      in training with ``unlabelled=True``;
    - with ``check_files``, every local video must exist; the missing ones
      are listed with their lines.

    At read time:

    - any error of the pipeline carries a note naming the video and its
      annotation line (Python >= 3.11 prints it under the traceback, also
      from data-loader workers); use
      :class:`~hallucinet_plugin.datasets.transforms.HalluDecordInit` so
      that unreadable videos raise a
      :class:`~hallucinet_plugin.datasets.transforms.VideoReadError`
      that names the file themselves;
    - every packed sample's metainfo gets ``filename`` and ``ann_line``, so
      hooks (``FiniteLossHook``) and dumped predictions can name the video;
      with ``unlabelled=True`` also ``labelled=False``, which tells
      :class:`HalluciNet` to train the sample on the hallucination loss
      only.

    Unlabelled videos (``unlabelled=True``) are the hallucination loss's
    extra data: its target is the frozen teacher's representation, no
    label. Mix them into labelled batches with a ``ConcatDataset`` and
    :class:`MixedSourceSampler` (``tools/train.py --unlabelled LIST`` writes
    that config).

    Args:
        ann_file (str): The annotation list.
        pipeline (list): The transforms.
        data_prefix (dict): ``dict(video=<folder>)``, as ``VideoDataset``.
        num_classes (int, optional): Labels must lie in
            ``[0, num_classes)``. Also the class count of ``multi_class``.
        check_files (bool): Check at start-up that every video on a local
            path exists.
        skip_unreadable (bool): In training, skip a video that raises
            ``VideoReadError`` (missing, empty, truncated, corrupt) with a
            warning naming it and counting the unreadable videos so far in
            this process; another video is drawn in its place (mmengine's
            refetch), so an epoch still has ``len(dataset)`` samples. Off by
            default: such a video is an error. Missing files found at
            start-up are dropped, counted, in one warning. Never in
            ``test_mode``: a skipped test video would change the metric.
        max_unreadable_ratio (float): With ``skip_unreadable``, give up
            (``RuntimeError``) once more than this fraction of the
            dataset's videos turned out unreadable in this process: a wrong
            ``data_prefix`` or a broken disk, not a few bad downloads.
        unlabelled (bool): Every video is unlabelled, in training too: the
            list holds one path per line (a line with a label is refused,
            unless ``ignore_labels``), each sample gets label -1 and
            ``labelled=False`` in its metainfo.
        ignore_labels (bool): With ``unlabelled``, accept a labelled list
            (e.g. Kinetics' ``<path> <label>`` list used as unlabelled
            video) and never read its labels: the columns after the path
            are not parsed.
        delimiter (str, optional): The column separator, any that
            ``VideoDataset`` takes. The default ``' '`` (and ``None``)
            takes a run of spaces and tabs as one separator; any other
            string separates exactly where it occurs, so with ``'\t'``
            paths may contain spaces.
        **kwargs: The other arguments of ``VideoDataset``.
    """

    def __init__(self,
                 ann_file: str,
                 pipeline: List[Union[ConfigType, Callable]],
                 data_prefix: ConfigType = dict(video=''),
                 num_classes: Optional[int] = None,
                 check_files: bool = True,
                 skip_unreadable: bool = False,
                 max_unreadable_ratio: float = 0.5,
                 unlabelled: bool = False,
                 ignore_labels: bool = False,
                 **kwargs) -> None:
        if num_classes is not None and num_classes < 1:
            raise ValueError(f'num_classes must be positive, got '
                             f'{num_classes}')
        if not 0 <= max_unreadable_ratio <= 1:
            raise ValueError('max_unreadable_ratio must lie in [0, 1], got '
                             f'{max_unreadable_ratio}')
        if ignore_labels and not unlabelled:
            raise ValueError(f'{ann_file}: ignore_labels=True needs '
                             'unlabelled=True (it drops the labels of a '
                             'list used as unlabelled videos)')
        delimiter = kwargs.get('delimiter', ' ')
        if delimiter is not None and (not isinstance(delimiter, str)
                                      or not delimiter):
            # VideoDataset would fail on the first line with "empty
            # separator", or a TypeError, naming neither file nor argument.
            raise ValueError(f'{ann_file}: delimiter must be a non-empty '
                             f'string or None, got {delimiter!r}')
        if unlabelled and kwargs.get('multi_class'):
            raise ValueError(f'{ann_file}: unlabelled=True has no classes; '
                             'drop multi_class (with ignore_labels=True a '
                             'multi-label list is read as unlabelled)')
        self.unlabelled = unlabelled
        self.ignore_labels = ignore_labels
        self.check_files = check_files
        self.skip_unreadable = skip_unreadable
        self.max_unreadable_ratio = max_unreadable_ratio
        self.unreadable = set()
        super().__init__(
            ann_file,
            pipeline=pipeline,
            data_prefix=data_prefix,
            num_classes=num_classes,
            **kwargs)

    # ------------------------------------------------------------ start-up
    def _runs_of_blanks(self) -> bool:
        # A valid ' '-separated list of VideoDataset splits the same way,
        # and lists aligned with several spaces or tabs are read too.
        return self.delimiter is None or self.delimiter == ' '

    def _split(self, line: str) -> List[str]:
        if not line.strip():
            return []
        if self._runs_of_blanks():
            return line.split()
        # Only the delimiter separates (a '\t' list keeps the spaces in its
        # paths); the blanks around a column are not part of it.
        return [field.strip() for field in line.strip().split(self.delimiter)]

    def _spaces_hint(self) -> str:
        return " (a path with spaces? set delimiter='\\t' and separate " \
            'the columns by tabs)' if self._runs_of_blanks() else ''

    def _parse_line(self, fields: List[str]) -> Dict:
        """One line's sample; raises ValueError saying what is wrong."""
        if self.unlabelled:
            if len(fields) > 1 and not self.ignore_labels:
                raise ValueError(
                    f'expected "<path>" in an unlabelled list, got '
                    f'{len(fields)} columns (a labelled list? set '
                    'ignore_labels=True, tools/train.py '
                    '--unlabelled-ignore-labels, to use it without its '
                    f'labels){self._spaces_hint()}')
            # The columns after the path are never read.
            fields = fields[:1]
        elif self.multi_class:
            if len(fields) < 2:
                raise ValueError(f'expected "<path> <label> [<label> ...]", '
                                 f'got {len(fields)} column(s)')
        elif len(fields) > 2:
            raise ValueError(f'expected "<path> <label>", got {len(fields)} '
                             f'columns{self._spaces_hint()}')
        if not fields[0]:
            # A line starting with a non-blank delimiter: the data prefix
            # would be taken for the video.
            raise ValueError('empty path')
        labels = []
        for field in fields[1:]:
            try:
                label = int(field)
            except ValueError:
                raise ValueError(
                    f'label {field!r} is not an integer') from None
            if label < 0:
                raise ValueError(f'negative label {label}')
            if self.num_classes is not None and label >= self.num_classes:
                raise ValueError(f'label {label} >= num_classes='
                                 f'{self.num_classes}')
            labels.append(label)
        if not labels:
            label = -1
        elif self.multi_class:
            label = labels
        else:
            label = labels[0]
        filename = fields[0]
        if self.data_prefix['video'] is not None:
            filename = osp.join(self.data_prefix['video'], filename)
        return dict(filename=filename, label=label)

    def load_data_list(self) -> List[Dict]:
        """Parse and check the annotation list (see the class docstring)."""
        if not exists(self.ann_file):
            raise FileNotFoundError(f'annotation file not found: '
                                    f'{self.ann_file}')
        if self.multi_class and self.num_classes is None:
            raise ValueError(f'{self.ann_file}: multi_class needs '
                             'num_classes')
        data_list, errors = [], []
        for number, line in enumerate(list_from_file(self.ann_file), 1):
            fields = self._split(line)
            if not fields:
                continue
            try:
                info = self._parse_line(fields)
            except ValueError as err:
                errors.append(f'line {number}: {err}: {line.strip()!r}')
                continue
            info['ann_line'] = number
            data_list.append(info)
        labelled = [info['label'] != -1 for info in data_list]
        if not errors and not all(labelled) and not self.unlabelled:
            if any(labelled):
                errors.append(
                    f'{labelled.count(False)} lines without a label among '
                    f'{labelled.count(True)} with one (first: line '
                    f'{data_list[labelled.index(False)]["ann_line"]})')
            elif not self.test_mode:
                errors.append('no labels (a path per line): only a test '
                              'dataset may be unlabelled')
        if errors:
            self._raise(f'{len(errors)} bad line(s)', errors)
        if not data_list:
            raise ValueError(f'{self.ann_file}: no videos listed')
        self._warn_odd_entries(data_list)
        if self.check_files:
            data_list = self._check_files(data_list)
        return data_list

    def _warn_odd_entries(self, data_list: List[Dict]) -> None:
        """A warning naming the lines that list a video twice (it is then
        sampled twice as often) or a video outside the data prefix (``..``
        or an absolute path: a list meant for another folder)."""
        root = (self.data_prefix or {}).get('video') or ''
        first: Dict[str, int] = {}
        twice, outside = [], []
        for info in data_list:
            name, line = info['filename'], info['ann_line']
            if name in first:
                twice.append(f'line {line}: {name} (also line '
                             f'{first[name]})')
            first.setdefault(name, line)
            if root and '://' not in name and not osp.normpath(
                    osp.abspath(name)).startswith(
                        osp.normpath(osp.abspath(root)) + osp.sep):
                outside.append(f'line {line}: {name}')
        for what, items in (('videos listed more than once', twice),
                            (f'videos outside the data prefix {root}',
                             outside)):
            if items:
                print_log(
                    f'annotation file {self.ann_file}: {len(items)} '
                    f'{what}:{_listing(items)}',
                    logger='current',
                    level=logging.WARNING)

    def _raise(self, what: str, items: List[str]) -> None:
        raise ValueError(f'annotation file {self.ann_file}: '
                         f'{what}:{_listing(items)}')

    def _check_files(self, data_list: List[Dict]) -> List[Dict]:
        # Only local paths: a stat per video is cheap on disk, not on a
        # remote store (URIs are read, and checked, by the pipeline).
        missing = [
            info for info in data_list if '://' not in info['filename']
            and not osp.isfile(info['filename'])
        ]
        if not missing:
            return data_list
        items = [
            f'line {info["ann_line"]}: {info["filename"]}'
            for info in missing
        ]
        if not self.skip_unreadable or self.test_mode:
            self._raise(
                f'{len(missing)} of {len(data_list)} videos not found '
                f'(data_prefix {self.data_prefix["video"]!r})', items)
        self._check_ratio(len(missing), len(data_list))
        print_log(
            f'{self.ann_file}: skipping {len(missing)} of {len(data_list)} '
            'videos that do not exist (skip_unreadable=True):\n  ' +
            '\n  '.join(items[:_MAX_LISTED]),
            logger='current',
            level=logging.WARNING)
        missing_ids = {id(info) for info in missing}
        return [info for info in data_list if id(info) not in missing_ids]

    def _check_ratio(self, unreadable: int, total: int) -> None:
        if unreadable > self.max_unreadable_ratio * total:
            raise RuntimeError(
                f'{self.ann_file}: {unreadable} of {total} videos are '
                f'unreadable, more than max_unreadable_ratio='
                f'{self.max_unreadable_ratio}; check data_prefix '
                f'({self.data_prefix["video"]!r}) and the files')

    # ----------------------------------------------------------- read time
    def prepare_data(self, idx: int) -> Any:
        """The pipeline's sample, with the video named in its metainfo and
        in any error; ``None`` for a skipped unreadable video."""
        info = self.get_data_info(idx)
        filename, line = info['filename'], info.get('ann_line')
        try:
            data = self.pipeline(info)
        except VideoReadError as err:
            if self.skip_unreadable and not self.test_mode:
                return self._skip(filename, err)
            _add_note(err, filename, line, self.ann_file)
            raise
        except Exception as err:
            _add_note(err, filename, line, self.ann_file)
            raise
        samples = data.get('data_samples') if isinstance(data, dict) \
            else None
        if samples is not None and hasattr(samples, 'set_metainfo'):
            meta = dict(filename=filename, ann_line=line)
            if self.unlabelled:
                meta['labelled'] = False
            samples.set_metainfo(meta)
        return data

    def _skip(self, filename: str, err: VideoReadError) -> None:
        self.unreadable.add(filename)
        print_log(
            f'skipping an unreadable video ({len(self.unreadable)} so far '
            f'in this process, skip_unreadable=True): {err}',
            logger='current',
            level=logging.WARNING)
        self._check_ratio(len(self.unreadable), len(self))
        # mmengine's BaseDataset draws another sample for None.
        return None


def _add_note(err: BaseException, filename: str, line: Optional[int],
              ann_file: str) -> None:
    # BaseException.add_note is Python >= 3.11; older versions keep the
    # error as it is.
    add_note = getattr(err, 'add_note', None)
    if add_note is not None:
        add_note(f'while loading {filename} (line {line} of {ann_file})')
