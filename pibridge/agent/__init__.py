"""Client of the TeamViewer IoT Agent's MQTT API: provisioning, mutual TLS and every request.

* :mod:`pibridge.agent.identity` — key, CSR, :func:`provision`, :func:`load_identity`;
* :mod:`pibridge.agent.client` — :class:`AgentClient`, one blocking method per request;
  its parts: :mod:`~pibridge.agent.connection` (connect, reconnect, paho's callbacks),
  :mod:`~pibridge.agent.exchange` (one request and its answer), :mod:`~pibridge.agent.requests`
  (one method per request) and :mod:`~pibridge.agent.pushes` (values sent without waiting, live data);
* :mod:`pibridge.agent.answers` — reading the agent's answers in every form a real agent may send;
* :mod:`pibridge.agent.topics` — the request, answer and error topics of each request;
* :mod:`pibridge.agent.errors` — :class:`AgentError` (with the agent's :class:`ErrorCode`),
  :class:`AgentTimeout`, :class:`AgentConnectionLost`, :class:`ProtocolError`,
  :class:`ProvisioningError`.
"""
