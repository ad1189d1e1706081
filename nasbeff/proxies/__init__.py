"""Training-free ("zero-cost") architecture scorers behind one registry.

Usage::

    from .. import proxies
    res = proxies.score("naswot", model, [(x, y)])      # -> ScoreResult(value, seconds, name, flag)
    proxies.available()                                  # sorted names

Conventions (every proxy):

* **Higher = better.** Each proxy documents its sign; ``grasp`` and ``jacov`` keep the sign of
  zero-cost-nas (Abdelfattah et al. 2021), ``synflow``/``synflow_bn`` are returned in **log space**
  (``log`` of the published value).
* ``batches`` is a list of ``(x, y)`` tensor pairs. Single-batch proxies use ``batches[0]`` only;
  ``zico`` needs >= 2 batches. A bare ``(x, y)`` tuple is accepted as one batch.
* The model is never modified: proxies work on a ``copy.deepcopy`` in **train mode** (batch-stat
  BN), as zero-cost-nas, NASLib and the NASWOT/ZiCo/MeCo reference code do.
* Numerical failure (NaN/inf in activations, outputs or gradients) raises ``ValueError``.
* **A network whose output does not depend on its input cannot be scored** (NB201's 341 cut-off
  cells: it can never learn above chance). Every proxy, structural ones (``params``, ``flops``)
  included, gives it :data:`CANNOT_SCORE` (``-inf``: ranked last) with the flag
  ``"output does not depend on the input"``. :func:`score` decides this once, before the proxy
  runs, from one train-mode forward pass of the first two samples.
* Other degenerate but well-defined cases never give a silent number: the value is the natural
  limit (``-inf`` for log-type scores, ``0.0`` for gradient sums) and ``ScoreResult.flag`` says why.
* Proxies that need several samples (``naswot``, ``jacov``/``naswot_v1``) raise ``ValueError`` on a
  batch of one.

Sharing and populations:

* ``score_many(names, model, batches)`` scores several proxies on one model; proxies registered as
  one **group** (``register_group``: ``aznas_*``, ``vkdnw*``, ``snip``/``grad_norm``/``plain``/``fisher``)
  are computed by a single shared forward/backward, and each member's ``seconds`` is its equal
  share of that call (so costs add up).
* ``score_population(names, models, batches)`` scores a population of candidate models and also
  accepts **rank aggregates** ``"rank:a+b+c"`` (sum of ``log(rank/N)``, AZ-NAS) and
  ``"meanrank:a+b"`` (mean rank) over that population (:mod:`nasbeff.proxies.aggregate`). An
  aggregate has no value for a single model: ``score("rank:...")`` raises ``ValueError``.
  ``AZNAS`` and ``VKDNW_AGG`` name the published aggregates.

Name map to other code bases: ``naswot`` = NASLib ``nwot`` (NASWOT v2, Hamming-kernel logdet);
``jacov`` = ``naswot_v1`` = NASLib ``jacov`` = zero-cost-nas ``jacob_cov`` (NASWOT arXiv v1);
``synflow`` = ``log`` of zero-cost-nas/NASLib ``synflow``; other names are identical.

Layout (zero-cost-nas style): :mod:`.registry` holds the registry and the scoring functions, one
module per proxy registers itself there (``@register``), :mod:`.aggregate` ranks within a population.
May import :mod:`nasbeff.core` (the beta_eff scorers) and :mod:`nasbeff.spaces`; nothing above.
"""

from __future__ import annotations

from .registry import *  # noqa: F403 - the registry's public names (its __all__)
from .aggregate import is_aggregate_name, parse_aggregate_name  # noqa: F401
from .registry import __all__, _GROUP_OF, _MEMBERS, _REGISTRY  # noqa: F401 - tests patch these tables

# Register the built-in proxies (each module decorates its functions with @register).
from . import (  # noqa: E402,F401
    aznas,
    beff,
    fisher,
    flops,
    grad_norm,
    gradsign,
    grasp,
    jacov,
    knas,
    loss_gradients,
    meco,
    naswot,
    ntk,
    params,
    per_sample,
    plain,
    snip,
    synflow,
    vkdnw,
    zen,
    zico,
)
