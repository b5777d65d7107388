"""The compact row format of the outbox.

A row holds one :class:`~pibridge.readings.Reading` as three columns:
``schema`` (a small integer), ``ts`` (milliseconds) and ``payload``.  The
schema number stands for the sensor name together with the names and types
of its quantities, in order, and is stored once in the ``schema`` table.  The
payload then needs no names and no type tags: it is the values packed
little-endian in that order.

=====  =====================  ========================================
kind   Python value           bytes in the payload
=====  =====================  ========================================
``d``  float                  8, IEEE 754 double
``q``  int in int64 range     8, signed
``?``  bool                   1
``s``  str                    4-byte length, then UTF-8
``n``  int beyond int64       4-byte length, then its decimal digits
=====  =====================  ========================================

Fixed-size values come first (in quantity order), the variable-size ones
after them (in quantity order), so the common case -- only doubles -- is a
single ``struct.pack``.  A reading of five doubles costs 40 bytes of payload.
"""

from __future__ import annotations

import json
import struct
import threading
from dataclasses import dataclass, field
from typing import NamedTuple

from pibridge.readings import Reading, Value

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
_FIXED_KINDS = {"d": "d", "q": "q", "?": "?"}
_LENGTH = struct.Struct("<I")


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class UndecodablePayload(ValueError):
    """A stored payload does not match its schema (the file was damaged or edited)."""


def kind_of(value: object) -> str:
    """The payload kind of one value, or ``""`` when it is not a value a reading may carry."""
    # bool first: it is a subclass of int.
    if isinstance(value, bool):
        return "?"
    if isinstance(value, float):
        return "d"
    if isinstance(value, int):
        return "q" if _INT64_MIN <= value <= _INT64_MAX else "n"
    if isinstance(value, str):
        return "s"
    return ""


@dataclass(eq=False)
class Layout:
    """One interned schema: a sensor and the names and kinds of its values, in order."""

    id: int
    sensor: str
    names: tuple[str, ...]
    kinds: str
    saved: bool = False
    _fixed: struct.Struct = field(init=False, repr=False)
    _fixed_index: tuple[int, ...] = field(init=False, repr=False)
    _variable_index: tuple[int, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._fixed_index = tuple(i for i, k in enumerate(self.kinds) if k in _FIXED_KINDS)
        self._variable_index = tuple(i for i, k in enumerate(self.kinds) if k not in _FIXED_KINDS)
        self._fixed = struct.Struct("<" + "".join(_FIXED_KINDS[self.kinds[i]] for i in self._fixed_index))

    @property
    def fields_json(self) -> str:
        return json.dumps([[n, k] for n, k in zip(self.names, self.kinds)], ensure_ascii=False)

    def pack(self, values: list[Value]) -> bytes:
        if not self._variable_index:
            return self._fixed.pack(*values)
        parts = [self._fixed.pack(*(values[i] for i in self._fixed_index))]
        for i in self._variable_index:
            data = str(values[i]).encode("utf-8")
            parts.append(_LENGTH.pack(len(data)))
            parts.append(data)
        return b"".join(parts)

    def unpack(self, payload: bytes) -> dict[str, Value]:
        try:
            if not self._variable_index:
                return dict(zip(self.names, self._fixed.unpack(payload)))
            values: list[Value] = [0] * len(self.names)
            for i, v in zip(self._fixed_index, self._fixed.unpack_from(payload, 0)):
                values[i] = v
            offset = self._fixed.size
            for i in self._variable_index:
                (length,) = _LENGTH.unpack_from(payload, offset)
                offset += _LENGTH.size
                chunk = payload[offset : offset + length]
                if len(chunk) != length:
                    raise UndecodablePayload("payload is shorter than its schema says")
                offset += length
                text = chunk.decode("utf-8")
                values[i] = int(text) if self.kinds[i] == "n" else text
            if offset != len(payload):
                raise UndecodablePayload("payload is longer than its schema says")
            return dict(zip(self.names, values))
        except (struct.error, UnicodeDecodeError, ValueError, TypeError) as exc:
            if isinstance(exc, UndecodablePayload):
                raise
            raise UndecodablePayload(str(exc)) from exc


class Encoded(NamedTuple):
    """A reading ready for its row: the reading itself is kept so it can be handed back unchanged."""

    reading: Reading
    layout: Layout
    payload: bytes


class Codec:
    """Interns layouts and turns readings into rows and back.  Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_key: dict[tuple[str, tuple[str, ...], str], Layout] = {}
        self._by_id: dict[int, Layout] = {}
        # (sensor, names, Python types of the values) -> layout: one lookup per
        # reading instead of classifying every value.  An int beyond int64
        # does not fit the layout its type suggests and takes the slow path.
        self._by_types: dict[tuple[str, tuple[str, ...], tuple[type, ...]], Layout] = {}
        self._next_id = 1

    def encode(self, reading: Reading) -> Encoded:
        """Raise TypeError naming the sensor and quantity when a value is not float, int, bool or str."""
        values = list(reading.values.values())
        fast_key = (reading.sensor, tuple(reading.values), tuple(map(type, values)))
        layout = self._by_types.get(fast_key)
        ts = reading.timestamp_ms
        if layout is not None and type(ts) is int and _INT64_MIN <= ts <= _INT64_MAX:
            try:
                return Encoded(reading, layout, layout.pack(values))
            except (struct.error, UnicodeEncodeError):
                pass
        encoded = self._encode_checked(reading, values)
        if "n" not in encoded.layout.kinds:
            self._by_types[fast_key] = encoded.layout
        return encoded

    def _encode_checked(self, reading: Reading, values: list[Value]) -> Encoded:
        kinds = "".join(map(kind_of, values))
        if len(kinds) != len(values):
            for name, value in reading.values.items():
                if not kind_of(value):
                    raise TypeError(
                        f"reading of sensor {reading.sensor!r}: quantity {name!r} has a "
                        f"{type(value).__name__} value ({value!r}); a reading's values must be "
                        "float, int, bool or str"
                    )
        ts = reading.timestamp_ms
        if not isinstance(ts, int) or isinstance(ts, bool) or not _INT64_MIN <= ts <= _INT64_MAX:
            raise TypeError(
                f"reading of sensor {reading.sensor!r}: timestamp_ms must be an int "
                f"(milliseconds since the epoch), not {ts!r}"
            )
        names = [reading.sensor, *reading.values]
        if not all(isinstance(name, str) and _is_utf8(name) for name in names):
            raise TypeError(
                f"reading of sensor {reading.sensor!r}: the sensor name and the quantity names must be str "
                "(and valid Unicode)"
            )
        key = (reading.sensor, tuple(reading.values), kinds)
        layout = self._by_key.get(key)
        if layout is None:
            layout = self._intern(key)
        try:
            return Encoded(reading, layout, layout.pack(values))
        except UnicodeEncodeError:
            raise TypeError(
                f"reading of sensor {reading.sensor!r}: a text value is not valid Unicode (lone surrogate)"
            ) from None

    def decode(self, schema: int, timestamp_ms: int, payload: bytes) -> Reading:
        layout = self._by_id.get(schema)
        if layout is None:
            raise UndecodablePayload(f"unknown schema {schema}")
        return Reading(layout.sensor, timestamp_ms, layout.unpack(payload))

    def _intern(self, key: tuple[str, tuple[str, ...], str]) -> Layout:
        with self._lock:
            layout = self._by_key.get(key)
            if layout is None:
                layout = Layout(self._next_id, *key)
                self._next_id += 1
                self._by_key[key] = layout
                self._by_id[layout.id] = layout
            return layout

    def load(self, rows: list[tuple[int, str, str]]) -> None:
        """Adopt the ``schema`` table of a file.

        Layouts made before the file could be opened (readings kept in memory
        while the disk was unusable) take the file's number for the same
        schema, or a fresh number that does not clash with the file's.
        """
        with self._lock:
            stored: dict[tuple[str, tuple[str, ...], str], int] = {}
            for schema_id, sensor, fields_json in rows:
                fields = json.loads(fields_json)
                key = (sensor, tuple(n for n, _ in fields), "".join(k for _, k in fields))
                stored[key] = schema_id
            taken = set(stored.values())
            next_id = max(taken, default=0) + 1
            for key, layout in self._by_key.items():
                if key in stored:
                    layout.id = stored[key]
                    layout.saved = True
                else:
                    layout.id = next_id
                    layout.saved = False
                    next_id += 1
            for key, schema_id in stored.items():
                if key not in self._by_key:
                    self._by_key[key] = Layout(schema_id, *key, saved=True)
            self._by_id = {layout.id: layout for layout in self._by_key.values()}
            self._next_id = next_id

    def forget_saved(self) -> None:
        """The file was replaced by an empty one: every layout has to be written again."""
        with self._lock:
            for layout in self._by_key.values():
                layout.saved = False

    def unsaved(self) -> list[Layout]:
        with self._lock:
            return [layout for layout in self._by_key.values() if not layout.saved]
