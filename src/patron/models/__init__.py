"""Statistical customer models, each reproducing its paper (see the module docstrings).

===========================  ============  ======================================
class                        model         data
===========================  ============  ======================================
:class:`BetaGeo`             BG/NBD        frequency, recency, T
:class:`ParetoNBD`           Pareto/NBD    frequency, recency, T
:class:`ModifiedBetaGeo`     MBG/NBD       frequency, recency, T
:class:`BetaGeoBetaBinom`    BG/BB         frequency, recency, n_periods
:class:`ShiftedBetaGeometric` sBG          survivors per period
:class:`GammaGamma`          Gamma-Gamma   frequency, monetary_value
===========================  ============  ======================================
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from patron.errors import ConvergenceError, InputError, NotFittedError

__all__ = [
    "BetaGeo",
    "ParetoNBD",
    "ModifiedBetaGeo",
    "BetaGeoBetaBinom",
    "ShiftedBetaGeometric",
    "GammaGamma",
    "ConvergenceError",
    "InputError",
    "NotFittedError",
]

_MODULES = {
    "BetaGeo": "beta_geo",
    "ParetoNBD": "pareto_nbd",
    "ModifiedBetaGeo": "modified_beta_geo",
    "BetaGeoBetaBinom": "beta_geo_beta_binom",
    "ShiftedBetaGeometric": "shifted_beta_geometric",
    "GammaGamma": "gamma_gamma",
}

if TYPE_CHECKING:
    from patron.models.beta_geo import BetaGeo
    from patron.models.beta_geo_beta_binom import BetaGeoBetaBinom
    from patron.models.gamma_gamma import GammaGamma
    from patron.models.modified_beta_geo import ModifiedBetaGeo
    from patron.models.pareto_nbd import ParetoNBD
    from patron.models.shifted_beta_geometric import ShiftedBetaGeometric


def __getattr__(name: str) -> Any:
    # Lazy: scipy is imported only when a model is used.
    if name in _MODULES:
        return getattr(import_module(f"patron.models.{_MODULES[name]}"), name)
    raise AttributeError(f"module 'patron.models' has no attribute {name!r}")
