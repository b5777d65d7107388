"""Client of the TeamViewer IoT Agent's MQTT API: provisioning, mutual TLS and every request.

* :mod:`pibridge.agent.identity` — key, CSR, :func:`provision`, :func:`load_identity`;
* :mod:`pibridge.agent.client` — :class:`AgentClient`, one blocking method per request;
* :mod:`pibridge.agent.answers` — reading the agent's answers in every form a real agent may send;
* :mod:`pibridge.agent.topics` — the request, answer and error topics of each request;
* :mod:`pibridge.agent.errors` — :class:`AgentError` (with the agent's :class:`ErrorCode`),
  :class:`AgentTimeout`, :class:`AgentConnectionLost`, :class:`ProtocolError`,
  :class:`ProvisioningError`.
"""
