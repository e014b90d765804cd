"""CNN trunks: a registry of named, typed specs and one constructor."""

from mer_cache.trunks.base import Trunk
from mer_cache.trunks.registry import create_trunk, get_spec, register_trunk, trunk_names
from mer_cache.trunks.spec import Preprocessing, TrunkSpec, WeightFile

__all__ = ["Trunk", "create_trunk", "get_spec", "register_trunk", "trunk_names",
           "Preprocessing", "TrunkSpec", "WeightFile"]
