"""Transforms: what happens to a driver's values before they are delivered.

The data path is drivers -> readings -> **transforms** -> delivery.  Here:

* :mod:`~pibridge.transforms.base` -- what a filter is (:class:`Filter`) and
  its three outcomes (passed, held, dropped);
* :mod:`~pibridge.transforms.values` -- one value at a time: ``valid``,
  ``clamp``, ``filter_out``, ``scale``, ``offset``, ``calibrate``,
  ``polynomial``, ``round``, ``invert``;
* :mod:`~pibridge.transforms.windows` -- over the last readings:
  ``median``, ``mean``, ``min``, ``max``, ``ema``, each with ``send_every``;
* :mod:`~pibridge.transforms.push` -- when to push: ``threshold`` with its
  ``heartbeat`` (90 s unless the config says otherwise), ``throttle``,
  ``debounce``;
* :mod:`~pibridge.transforms.chain` -- a metric's filters in order
  (:class:`Chain`), with a trace of every step and counters of what was
  held back or dropped;
* :mod:`~pibridge.transforms.parse` -- reading a metric's ``filters`` list
  and the older keys from the config;
* :mod:`~pibridge.transforms.derived` -- extra metrics computed from a
  sensor's own quantities (dew point, sea-level pressure, VPD, ...).

Nothing here imports the bridge, touches hardware or does I/O.
"""

from pibridge.transforms.base import Dropped, Filter, FilterOverflow, Held, Passed
from pibridge.transforms.chain import Chain, Trace

__all__ = ["Chain", "Dropped", "Filter", "FilterOverflow", "Held", "Passed", "Trace"]
