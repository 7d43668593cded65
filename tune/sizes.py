"""The data cache entries a search's trials open: one per input size when ``data.image_size`` is searched.

The cache holds images already resized (train/data/cache.py), so each size is its own entry; the driver prepares
every size in the choice before the trials start (bad data fails fast, once) and hands each trial the name
of the entry of its size (tune/trial.py run_trial ``data_keys``).
"""

from __future__ import annotations

from train.data.prepared import PreparedData, prepare
from tune.distributions import Choice
from tune.space import SearchFile

IMAGE_SIZE = "data.image_size"


def prepare_sizes(search: SearchFile) -> tuple[PreparedData, dict[int, str]]:
    """(the data of the first size, {image size: cache entry name}); {} when the size is not searched."""
    param = search.space.get(IMAGE_SIZE)
    if not isinstance(param, Choice):
        return prepare(search.trial_config({}).data), {}
    first, keys = None, {}
    for size in param.values:
        data = prepare(search.trial_config({IMAGE_SIZE: size}).data)
        keys[int(size)] = data.cache_key
        first = first or data
    return first, keys
