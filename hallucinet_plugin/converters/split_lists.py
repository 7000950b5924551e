"""Official UCF101 and HMDB51 split lists as mmaction2 video lists.

Both datasets ship their three train/test splits in their own formats;
mmaction2's ``VideoDataset`` reads one ``relative/path.avi label`` line per
video with 0-based labels. The converters here read the official files,
check every line and write ``{dataset}_train_split_{k}_videos.txt`` and
``{dataset}_val_split_{k}_videos.txt`` (the names mmaction2's own data
tools write, and the ones the configs in ``configs/`` expect).

UCF101 (``ucfTrainTestlist/``)
    ``classInd.txt``: ``id name`` per line, ids 1-based and contiguous;
    ``trainlist0{1,2,3}.txt``: ``Class/v_Class_gXX_cYY.avi id``;
    ``testlist0{1,2,3}.txt``: ``Class/v_Class_gXX_cYY.avi`` (no label; it
    comes from the class folder). The class folder, not the file name,
    names the class (the files of ``HandstandPushups`` are spelt
    ``v_HandStandPushups_*``).

HMDB51 (``testTrainMulti_7030_splits/``)
    ``<class>_test_split{1,2,3}.txt``: ``video.avi id`` per line, id 1 =
    train, 2 = test, 0 = not used in that split; videos lie under
    ``<class>/video.avi``. Labels follow the alphabetical order of the
    class names (as mmaction2's data tools number them), unless a class
    index file in UCF101's ``classInd.txt`` format is given.
"""
import os
import os.path as osp
import re
from typing import Dict, List, Optional, Sequence, Tuple

DATASETS = ('ucf101', 'hmdb51')
SPLITS = (1, 2, 3)
HMDB51_USAGE = {'0': None, '1': 'train', '2': 'val'}
_HMDB51_FILE = re.compile(r'^(?P<name>.+)_test_split(?P<split>\d+)\.txt$')

Entry = Tuple[str, int]


def _read_lines(path: str) -> List[Tuple[int, str]]:
    """Non-blank lines of a text file with their 1-based line numbers
    (the official lists have CRLF endings and trailing blanks)."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'split list not found: {path}')
    with open(path, encoding='utf-8') as f:
        return [(i, line.strip()) for i, line in enumerate(f, 1)
                if line.strip()]


def read_class_index(path: str) -> List[str]:
    """Read a ``classInd.txt``: ``id name`` per line, ids 1-based.

    Args:
        path (str): The class index file.

    Returns:
        list[str]: Class names; the 0-based label of ``names[i]`` is ``i``.

    Raises:
        ValueError: On a malformed line, a repeated id or name, or ids that
            are not exactly ``1..N``.
    """
    by_id: Dict[int, str] = {}
    for lineno, line in _read_lines(path):
        fields = line.split()
        if len(fields) != 2 or not fields[0].isdigit():
            raise ValueError(f'{path}:{lineno}: expected "<id> <class>", '
                             f'got {line!r}')
        class_id, name = int(fields[0]), fields[1]
        if class_id in by_id:
            raise ValueError(f'{path}:{lineno}: class id {class_id} given '
                             f'twice ({by_id[class_id]!r} and {name!r})')
        if name in by_id.values():
            raise ValueError(f'{path}:{lineno}: class {name!r} given twice')
        by_id[class_id] = name
    if not by_id:
        raise ValueError(f'{path}: no classes')
    if sorted(by_id) != list(range(1, len(by_id) + 1)):
        raise ValueError(f'{path}: class ids must be 1..{len(by_id)} '
                         f'(1-based, contiguous), got {sorted(by_id)}')
    return [by_id[i] for i in range(1, len(by_id) + 1)]


def _class_of(path: str, video: str, lineno: int, labels: Dict[str, int],
              index_file: str) -> int:
    """0-based label of ``Class/video.avi`` from its class folder."""
    folder = osp.dirname(video)
    if not folder or osp.dirname(folder):
        raise ValueError(f'{path}:{lineno}: expected "<class>/<video>", '
                         f'got {video!r}')
    if folder not in labels:
        raise ValueError(f'{path}:{lineno}: unknown class {folder!r} (not '
                         f'in {index_file})')
    return labels[folder]


def _add(entries: List[Entry], seen: Dict[str, int], entry: Entry,
         path: str, lineno: int) -> None:
    if entry[0] in seen:
        raise ValueError(f'{path}:{lineno}: {entry[0]} is listed twice '
                         f'(first on line {seen[entry[0]]})')
    seen[entry[0]] = lineno
    entries.append(entry)


def parse_ucf101_split(ann_dir: str, split: int,
                       classes: Optional[Sequence[str]] = None
                       ) -> Tuple[List[Entry], List[Entry]]:
    """One official UCF101 split as ``(video, label)`` pairs.

    Args:
        ann_dir (str): The folder with ``classInd.txt``,
            ``trainlist0{split}.txt`` and ``testlist0{split}.txt``.
        split (int): 1, 2 or 3.
        classes (Sequence[str], optional): Class names in label order;
            read from ``classInd.txt`` when None.

    Returns:
        tuple: ``train`` and ``val`` lists of ``(relative path, 0-based
        label)``, in file order.
    """
    index_file = osp.join(ann_dir, 'classInd.txt')
    if classes is None:
        classes = read_class_index(index_file)
    labels = {name: i for i, name in enumerate(classes)}

    train_file = osp.join(ann_dir, f'trainlist{split:02d}.txt')
    train: List[Entry] = []
    seen: Dict[str, int] = {}
    for lineno, line in _read_lines(train_file):
        fields = line.split()
        if len(fields) != 2 or not fields[1].isdigit():
            raise ValueError(f'{train_file}:{lineno}: expected '
                             f'"<class>/<video> <class id>", got {line!r}')
        video, class_id = fields[0], int(fields[1])
        label = _class_of(train_file, video, lineno, labels, index_file)
        if class_id != label + 1:
            raise ValueError(
                f'{train_file}:{lineno}: {video} has class id {class_id} '
                f'but its class {classes[label]!r} is {label + 1} in '
                f'{index_file}')
        _add(train, seen, (video, label), train_file, lineno)

    test_file = osp.join(ann_dir, f'testlist{split:02d}.txt')
    val: List[Entry] = []
    seen = {}
    for lineno, line in _read_lines(test_file):
        fields = line.split()
        if len(fields) != 1:
            raise ValueError(f'{test_file}:{lineno}: expected '
                             f'"<class>/<video>" only, got {line!r}')
        label = _class_of(test_file, fields[0], lineno, labels, index_file)
        _add(val, seen, (fields[0], label), test_file, lineno)
    return train, val


def hmdb51_classes(split_dir: str) -> List[str]:
    """HMDB51 class names found in a split folder, sorted.

    Raises:
        FileNotFoundError: When the folder or its split files are missing.
        ValueError: When a class lacks one of the three splits.
    """
    if not osp.isdir(split_dir):
        raise FileNotFoundError(f'HMDB51 split folder not found: '
                                f'{split_dir}')
    found: Dict[str, set] = {}
    for filename in os.listdir(split_dir):
        match = _HMDB51_FILE.match(filename)
        if match:
            found.setdefault(match['name'], set()).add(int(match['split']))
    if not found:
        raise FileNotFoundError(
            f'{split_dir}: no <class>_test_split<k>.txt files (expected '
            "HMDB51's testTrainMulti_7030_splits folder)")
    incomplete = {
        name: sorted(set(SPLITS) - splits)
        for name, splits in found.items() if not set(SPLITS) <= splits
    }
    if incomplete:
        raise ValueError(f'{split_dir}: classes without all of the splits '
                         f'{list(SPLITS)} (missing ones shown): '
                         f'{incomplete}')
    return sorted(found)


def parse_hmdb51_split(split_dir: str, split: int,
                       classes: Optional[Sequence[str]] = None
                       ) -> Tuple[List[Entry], List[Entry]]:
    """One official HMDB51 split as ``(video, label)`` pairs.

    Args:
        split_dir (str): The ``testTrainMulti_7030_splits`` folder.
        split (int): 1, 2 or 3.
        classes (Sequence[str], optional): Class names in label order;
            default: the classes of ``split_dir``, sorted. A split file of
            a class not in ``classes``, or a class without one, is an
            error.

    Returns:
        tuple: ``train`` and ``val`` lists of ``('<class>/<video>.avi',
        0-based label)``, class by class in label order.
    """
    found = hmdb51_classes(split_dir)
    if classes is None:
        classes = found
    unknown = sorted(set(found) - set(classes))
    if unknown:
        raise ValueError(f'{split_dir}: split files of unknown classes '
                         f'{unknown} (not in the class index)')
    missing = sorted(set(classes) - set(found))
    if missing:
        raise FileNotFoundError(f'{split_dir}: no split files for the '
                                f'classes {missing}')
    lists: Dict[str, List[Entry]] = dict(train=[], val=[])
    for label, name in enumerate(classes):
        path = osp.join(split_dir, f'{name}_test_split{split}.txt')
        seen: Dict[str, int] = {}
        for lineno, line in _read_lines(path):
            fields = line.split()
            if len(fields) != 2 or fields[1] not in HMDB51_USAGE:
                raise ValueError(f'{path}:{lineno}: expected "<video> 0|1|2" '
                                 f'(0 unused, 1 train, 2 test), got '
                                 f'{line!r}')
            if '/' in fields[0]:
                raise ValueError(f'{path}:{lineno}: expected a bare video '
                                 f'file name, got {fields[0]!r}')
            video = f'{name}/{fields[0]}'
            if video in seen:
                raise ValueError(f'{path}:{lineno}: {fields[0]} is listed '
                                 f'twice (first on line {seen[video]})')
            seen[video] = lineno
            usage = HMDB51_USAGE[fields[1]]
            if usage is not None:
                lists[usage].append((video, label))
    return lists['train'], lists['val']


def check_videos(entries: Sequence[Entry], video_root: str,
                 list_name: str = 'list') -> None:
    """Raise if any listed video is not a file under ``video_root``.

    Raises:
        FileNotFoundError: Naming how many are missing and some of them.
    """
    if not osp.isdir(video_root):
        raise FileNotFoundError(f'video folder not found: {video_root}')
    missing = [
        video for video, _ in entries
        if not osp.isfile(osp.join(video_root, video))
    ]
    if missing:
        raise FileNotFoundError(
            f'{len(missing)} of the {len(entries)} videos of {list_name} '
            f'are not under {video_root}, e.g. {missing[:5]}')


def write_video_list(entries: Sequence[Entry], path: str) -> None:
    """Write an mmaction2 video list, one ``path label`` line per video."""
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'w', encoding='utf-8') as f:
        f.writelines(f'{video} {label}\n' for video, label in entries)


def convert_split_lists(dataset: str,
                        ann_dir: str,
                        out_dir: str,
                        splits: Sequence[int] = SPLITS,
                        video_root: Optional[str] = None,
                        class_index: Optional[str] = None) -> Dict:
    """Convert official split lists into mmaction2 video lists.

    Args:
        dataset (str): ``'ucf101'`` or ``'hmdb51'``.
        ann_dir (str): ``ucfTrainTestlist`` (UCF101) or
            ``testTrainMulti_7030_splits`` (HMDB51).
        out_dir (str): Where ``{dataset}_{train,val}_split_{k}_videos.txt``
            are written.
        splits (Sequence[int]): Which of the splits 1, 2, 3.
        video_root (str, optional): When given, every listed video must
            exist under it; nothing is written otherwise.
        class_index (str, optional): A ``classInd.txt``-style file fixing
            the labels; default ``ann_dir/classInd.txt`` for UCF101 and the
            sorted class names for HMDB51.

    Returns:
        dict: ``classes`` (names in label order) and ``files``
        (``{(split, 'train' | 'val'): (path, number of videos)}``).
    """
    if dataset not in DATASETS:
        raise ValueError(f'dataset must be one of {DATASETS}, got '
                         f'{dataset!r}')
    bad = [k for k in splits if k not in SPLITS]
    if bad or not splits:
        raise ValueError(f'splits must be among {list(SPLITS)}, got '
                         f'{list(splits)}')
    if dataset == 'ucf101':
        parse = parse_ucf101_split
        classes = read_class_index(
            class_index or osp.join(ann_dir, 'classInd.txt'))
    else:
        parse = parse_hmdb51_split
        classes = read_class_index(class_index) if class_index else \
            hmdb51_classes(ann_dir)
    # Everything is parsed and checked before anything is written.
    lists = {}
    for k in splits:
        lists[k, 'train'], lists[k, 'val'] = parse(ann_dir, k, classes)
        for part in ('train', 'val'):
            if not lists[k, part]:
                raise ValueError(f'{dataset} split {k}: no {part} videos '
                                 f'in {ann_dir}')
            if video_root is not None:
                check_videos(lists[k, part], video_root,
                             f'{dataset} split {k} {part}')
    files = {}
    for (k, part), entries in lists.items():
        path = osp.join(out_dir, f'{dataset}_{part}_split_{k}_videos.txt')
        write_video_list(entries, path)
        files[k, part] = (path, len(entries))
    return dict(classes=list(classes), files=files)
