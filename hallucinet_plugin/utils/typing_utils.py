"""Type aliases of the plugin's signatures (as mmaction2's
``mmaction/utils/typing_utils.py``)."""
import os
from typing import Optional, Union

from mmengine.config import ConfigDict

ConfigType = Union[ConfigDict, dict]
OptConfigType = Optional[ConfigType]
PathLike = Union[str, os.PathLike]
