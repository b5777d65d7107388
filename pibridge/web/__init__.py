"""The local web page: live charts, a JSON API and Prometheus ``/metrics``, for the daemon and the simulator.

* :mod:`pibridge.web.settings`: the ``[http]`` config section;
* :mod:`pibridge.web.server`: the bounded, read-only HTTP server (standard library);
* :mod:`pibridge.web.history`: the recent values of every metric, in memory;
* :mod:`pibridge.web.prometheus`: the Prometheus text format;
* :mod:`pibridge.web.bridge_view`: the daemon's page;
* :mod:`pibridge.web.sim_view`: the simulator's page (what the agent received).

Nothing here is imported unless a page is configured (the config reader
imports only ``settings``), so the daemon without ``[http]`` pays nothing.
"""
