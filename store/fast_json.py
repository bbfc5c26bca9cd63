"""The library's JSON transcoder with its encoding and decoding done by orjson: the same
bytes and values, faster.

Encoding every event's state was the largest single cost of writing the ledger after the
domain itself. orjson writes exactly the bytes of the library's encoder (compact
separators, UTF-8 rather than \\u escapes, the same string escapes) for everything a
domain event's state holds: str, int, bool, None, dicts with str keys, lists and tuples;
anything else (datetime, Decimal, date, time, dataclasses) goes to the library's
transcodings, as before, but for a datetime in UTC or naive, whose transcoding's dict is
written with orjson's text of it (the same as ``isoformat()``'s, in a fraction of its
time). What orjson would spell differently never reaches it: integers beyond 64 bits and
dicts with other keys fall back to the library's encoder whole.
Floats, UUIDs and enums, which orjson encodes natively and the library does not, do not
occur in event states (money is integer minor units, ids are str); the tests re-encode
every event of the golden ledger and of generated traffic to hold that.

Decoding is orjson's too, with the library's own hook applied to every dict afterwards,
innermost first, as the library's decoder applies it while it parses: the same values, at
a fraction of the cost (the hook was a Python call per dict, made by the pure-Python side
of json). What orjson refuses (invalid UTF-8, NaN) or may read differently (a float, which
is how orjson reads an integer beyond 64 bits; states hold none) is decoded by the
library's decoder, which gives its own value or error. One known difference, which our
encoders never write: of an object with a repeated key both keep the last value, but
orjson drops the earlier ones unread, so the hook never sees them and an error the library
would raise on one (an unknown ``_type_``, a bad decimal) is not raised.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
from eventsourcing.persistence import DatetimeAsISO, DecimalAsStr, JSONTranscoder, Transcoding

# Every datetime, date and time goes to the library's transcodings (DatetimeAsISO etc.),
# and dataclasses too, rather than orjson's own spelling of them.
_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS

# The library's encoder's spelling of DatetimeAsISO's dict, up to its text.
_DATETIME_ISO_OPEN = b'{"_type_":"' + DatetimeAsISO.name.encode() + b'","_data_":'


class FastJSONTranscoder(JSONTranscoder):
    """JSONTranscoder whose encode() and decode() are orjson's: byte for byte the same
    output, and the same values (but for the repeated keys the module docstring names)."""

    def __init__(self) -> None:
        super().__init__()
        self._datetime_iso = False
        self._decimal_str = False
        self._text_decoders: dict[str, Callable[[str], Any]] = {}

    def register(self, transcoding: Transcoding) -> None:
        super().register(transcoding)
        self._datetime_iso = type(self.types.get(datetime)) is DatetimeAsISO
        self._decimal_str = type(self.types.get(Decimal)) is DecimalAsStr
        # What the library's transcodings of these names do with text, called without
        # them (every event has a timestamp, and a decoded batch has tens of thousands).
        self._text_decoders = {
            name: decode
            for name, kind, decode in (
                (DatetimeAsISO.name, DatetimeAsISO, datetime.fromisoformat),
                (DecimalAsStr.name, DecimalAsStr, Decimal),
            )
            if type(self.names.get(name)) is kind
        }

    def _encode_obj(self, o: Any) -> dict[str, Any]:
        # Every event has a timestamp and priced ones carry Decimals: the library's
        # transcodings' dicts, without their look-up and call (when they are the ones
        # registered for the type).
        kind = type(o)
        if kind is datetime and self._datetime_iso:
            return {"_type_": DatetimeAsISO.name, "_data_": o.isoformat()}
        if kind is Decimal and self._decimal_str:
            return {"_type_": DecimalAsStr.name, "_data_": str(o)}
        return super()._encode_obj(o)

    def _orjson_default(self, o: Any) -> Any:
        # A datetime in UTC or naive (every event's timestamp, every message time given in
        # UTC) is its transcoding's dict written whole, its text by orjson, which spells
        # those exactly as isoformat() does, in a fraction of its time (isoformat() was the
        # largest part of encoding a state). Other offsets go to isoformat(): orjson drops
        # an offset's seconds. Not for the library's encoder, which takes no Fragment.
        if type(o) is datetime and self._datetime_iso and (o.tzinfo is UTC or o.tzinfo is None):
            return orjson.Fragment(_DATETIME_ISO_OPEN + orjson.dumps(o) + b"}")
        return self._encode_obj(o)

    def encode(self, obj: Any) -> bytes:
        try:
            # Copied to its own size: orjson's bytes keep the 4 KiB buffer they were written
            # in, and the ledger's record cache holds tens of thousands of them (80 MiB).
            return bytes(
                memoryview(orjson.dumps(obj, default=self._orjson_default, option=_OPTIONS))
            )
        except orjson.JSONEncodeError:
            # A value orjson refuses (an integer past 64 bits, a non-str key) or a type no
            # transcoding knows: the library's encoder, which says so in its own words.
            return super().encode(obj)

    def decode(self, data: bytes) -> Any:
        try:
            return self._revived(orjson.loads(data))
        except (orjson.JSONDecodeError, _FloatRead):
            return super().decode(data)

    def _revived(self, value: Any) -> Any:
        """``value`` with the library's hook applied to each dict, innermost first."""
        kind = type(value)
        if kind is dict:
            for key, item in value.items():
                if type(item) in _LOOKED_INTO:
                    value[key] = self._revived(item)
            if len(value) == 2:
                name, data = value.get("_type_"), value.get("_data_")
                if type(name) is str and type(data) is str and name in self._text_decoders:
                    return self._text_decoders[name](data)
            return self._decode_obj(value)
        if kind is list:
            for index, item in enumerate(value):
                if type(item) in _LOOKED_INTO:
                    value[index] = self._revived(item)
        elif kind is float:
            raise _FloatRead
        return value


class _FloatRead(Exception):
    """orjson read a float: perhaps an integer beyond 64 bits, which json reads exactly."""


# What orjson.loads returns that may hold a dict, or be a float.
_LOOKED_INTO = frozenset({dict, list, float})
