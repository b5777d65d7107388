"""Typed errors of the agent client.

The agent answers a failed request on an error topic with
``{"errorMessage": str, "errorcode": int, "metrics": [...]?}``;
:class:`AgentError` carries those three fields, the code as an
:class:`ErrorCode`.  Not hearing back in time (:class:`AgentTimeout`) and
losing the connection (:class:`AgentConnectionLost`) are different failures
and have their own types.
"""

from __future__ import annotations

import enum
import unicodedata


class ErrorCode(enum.IntEnum):
    """The agent's error codes, section 6 of the API reference."""

    NO_BACKEND_CONNECTION = 1
    RESERVED = 2
    INTERNAL_ERROR = 3
    INVALID_JSON = 4
    JSON_IS_NOT_AN_OBJECT = 5
    MISSING_PARAMETER = 6
    PARAMETER_IS_NOT_A_STRING = 7
    PARAMETER_IS_NOT_A_DOUBLE = 8
    PARAMETER_IS_NOT_A_BOOL = 9
    PARAMETER_IS_NOT_AN_ARRAY = 10
    PARAMETER_IS_NOT_AN_INTEGER = 11
    UNKNOWN_VALUE_UNIT = 12
    UNKNOWN_METRIC_TYPE = 13
    VALUE_UNIT_OR_VALUE_TYPE_HAS_TO_BE_PROVIDED = 14
    UNKNOWN_SENSOR_ID = 15
    UNKNOWN_METRIC_ID = 16
    NO_METRICS_UPDATED = 17
    FORBIDDEN_ACCESS = 18
    OUT_OF_RANGE = 19
    CERTIFICATE_FORMAT_ERROR = 20
    CERTIFICATE_IS_EMPTY_ERROR = 21
    CERTIFICATE_WITHOUT_COMMON_NAME = 22
    DELETE_METRICS_FAILED = 23
    CHANGE_METRICS_FAILED = 24
    INVALID_CLIENT_NAME = 25
    CREATE_METRICS_FAILED = 26
    PUSH_VALUES_FAILED = 27
    SENSOR_NAME_EXISTS_ERROR = 28


#: The reference's description of each code, used by the simulator as the
#: default ``errorMessage`` and by the client to explain a bare code.
DESCRIPTIONS: dict[ErrorCode, str] = {
    ErrorCode.NO_BACKEND_CONNECTION: "Server is not reachable.",
    ErrorCode.RESERVED: "Reserved for future use.",
    ErrorCode.INTERNAL_ERROR: "Internal Error. Please check the logs at "
    "/var/log/teamviewer-iot-agent/teamviewer-iot-agent_logfile.log.",
    ErrorCode.INVALID_JSON: "Content is not valid JSON.",
    ErrorCode.JSON_IS_NOT_AN_OBJECT: "Content is not valid JSON.",
    ErrorCode.MISSING_PARAMETER: "The message you provided does not contain a required key.",
    ErrorCode.PARAMETER_IS_NOT_A_STRING: "The key indicated in the error message is not of type string.",
    ErrorCode.PARAMETER_IS_NOT_A_DOUBLE: "The key indicated in the error message is not of type double.",
    ErrorCode.PARAMETER_IS_NOT_A_BOOL: "The key indicated in the error message is not of type bool.",
    ErrorCode.PARAMETER_IS_NOT_AN_ARRAY: "The key indicated in the error message is not an array.",
    ErrorCode.PARAMETER_IS_NOT_AN_INTEGER: "The key indicated in the error message is not of type integer.",
    ErrorCode.UNKNOWN_VALUE_UNIT: "The provided valueUnit is not valid.",
    ErrorCode.UNKNOWN_METRIC_TYPE: "Only bool, string, double and integer value types are supported.",
    ErrorCode.VALUE_UNIT_OR_VALUE_TYPE_HAS_TO_BE_PROVIDED: "valueUnit or valueType and valueAnnotation is missing.",
    ErrorCode.UNKNOWN_SENSOR_ID: "The provided sensor ID does not exist.",
    ErrorCode.UNKNOWN_METRIC_ID: "The provided metric ID does not exist.",
    ErrorCode.NO_METRICS_UPDATED: "There were errors on every metric provided. No metric was updated.",
    ErrorCode.FORBIDDEN_ACCESS: "The requested resource does not exist.",
    ErrorCode.OUT_OF_RANGE: "The frequency value is out of range.",
    ErrorCode.CERTIFICATE_FORMAT_ERROR: "An error occurred while parsing the certificate signing request.",
    ErrorCode.CERTIFICATE_IS_EMPTY_ERROR: "The submitted certificate signing request is empty.",
    ErrorCode.CERTIFICATE_WITHOUT_COMMON_NAME: "Cannot retrieve the CommonName attribute from the certificate signing request.",
    ErrorCode.DELETE_METRICS_FAILED: "Failed to delete the following metrics.",
    ErrorCode.CHANGE_METRICS_FAILED: "Failed to modify some metrics.",
    ErrorCode.INVALID_CLIENT_NAME: "Client name is not valid.",
    ErrorCode.CREATE_METRICS_FAILED: "Failed to create the following metrics.",
    ErrorCode.PUSH_VALUES_FAILED: "Failed to push values to some metrics.",
    ErrorCode.SENSOR_NAME_EXISTS_ERROR: "Sensor name already exists.",
}


_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(text: object, limit: int = 400) -> str:
    """*text* safe for one log line or the status file: control and formatting characters escaped, cut at *limit*.

    Strings from the agent end up in log lines; a newline in one would forge
    a second line, a right-to-left override would turn the rest around.
    """
    text = str(text)
    if len(text) > limit:
        text = text[:limit] + "..."
    if text.isprintable():
        return text
    out = []
    for char in text:
        if char.isprintable() or unicodedata.category(char) == "Zs":
            out.append(char)
        elif char in _NAMED_ESCAPES:
            out.append(_NAMED_ESCAPES[char])
        elif ord(char) <= 0xFF:
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(f"\\u{ord(char):04x}" if ord(char) <= 0xFFFF else f"\\U{ord(char):08x}")
    return "".join(out)


class PibridgeAgentError(Exception):
    """Base class of every error the agent client raises."""


class AgentError(PibridgeAgentError):
    """The agent refused a request and said why on an error topic.

    ``code`` is an :class:`ErrorCode`, a plain int for a code the reference
    does not list, or None when the agent sent no usable code.  ``message``
    is the agent's text with control characters escaped (see :func:`printable`).
    """

    def __init__(self, code: ErrorCode | int | None, message: str, metrics: list | None = None, topic: str = ""):
        if code is not None:
            try:
                code = ErrorCode(code)
            except ValueError:
                pass
        self.code = code
        self.message = printable(message)
        self.metrics = [printable(m, 80) for m in metrics or []]
        self.topic = topic
        if code is None:
            text = f"agent error without a code: {self.message}"
        else:
            name = code.name if isinstance(code, ErrorCode) else "unknown code"
            text = f"agent error {int(code)} ({name}): {self.message}"
        if self.metrics:
            text += f" [metrics: {', '.join(self.metrics)}]"
        super().__init__(text)


class AgentTimeout(PibridgeAgentError):
    """No answer arrived within the timeout; the request may or may not have been applied."""


class AgentConnectionLost(PibridgeAgentError):
    """The connection to the agent is down, or went down while waiting for an answer."""


class ProtocolError(PibridgeAgentError):
    """The agent answered with something the API reference does not allow (not JSON, wrong shape)."""


class ProvisioningError(PibridgeAgentError):
    """Getting or using a client certificate failed before the agent could say why.

    A bad client name, an unreachable or untrusted agent, a missing CA file,
    an unwritable identity directory.  When the agent itself refuses a CSR
    it says why on the error topic, and that is an :class:`AgentError`.
    """
