from typing import Optional, Union

from mmengine.config import ConfigDict

ConfigType = Union[ConfigDict, dict]
OptConfigType = Optional[ConfigType]

import os  # noqa: E402

PathLike = Union[str, os.PathLike]
