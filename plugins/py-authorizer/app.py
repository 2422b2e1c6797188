"""Edgeway token authorizer in Python (world `edgeway:plugin/authorizer@0.1.0`), with the
same behaviour as the Rust `plugins/token-authorizer`:

    { "tokens": {
        "s3cr3t": { "principal": "alice", "context": { "tier": "gold" }, "usage_key": "k-alice" },
        "other":  { "principal": "bob" } } }

It reads the first identity value and accepts `Bearer <token>` (scheme in any case) or a
bare token. No identity, an empty or malformed value (`Bearer` alone, another scheme, spaces
inside the token) -> unauthorized; a token not in the config -> deny("token not
recognised"); a known token -> allow with the entry's principal, its context sorted by key
(as the Rust plugin's BTreeMap gives it) followed by ("lang", "python"), and its usage_key.

The config is read and checked once per instance, on the first call (componentize-py runs
top-level code at build time, when no host is there). Unknown keys are rejected. A bad
config is logged once at error level and every call then fails with the same `err(...)`.
"""

import json
import re
from typing import Dict, List, Optional, Tuple, Union

import wit_world
from componentize_py_types import Err
from wit_world.imports import config, log, types

LANG = ("lang", "python")
UNAUTHORIZED = types.Decision_Unauthorized()
DENY = types.Decision_Deny("token not recognised")

# Rust's `str::trim` (Unicode White_Space) and `char::is_ascii_whitespace`.
_WS = "\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_TRIM = re.compile(f"^[{_WS}]+|[{_WS}]+$")
_TRIM_START = re.compile(f"^[{_WS}]+")
_ASCII_SPACE = re.compile("[\t\n\f\r ]")


class ConfigError(Exception):
    pass


def _invalid(path: str, message: str) -> ConfigError:
    return ConfigError(f"plugin config: at `{path}`: {message}")


def _kind(v: object) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def _only_keys(obj: dict, allowed: Tuple[str, ...], path: str) -> None:
    for k in obj:
        if k not in allowed:
            expected = ", ".join(f"`{a}`" for a in allowed)
            raise _invalid(path, f"unknown field `{k}`, expected one of {expected}")


def _parse_config(text: str) -> Dict[str, types.Decision_Allow]:
    """Token -> the `allow` decision it earns, built once."""
    try:
        raw = json.loads(text)
    except ValueError as e:
        raise _invalid(".", f"not valid JSON: {e}") from None
    if raw is None:
        raise ConfigError(
            "plugin config: none was given and this plugin needs one (missing field `tokens`)"
        )
    if not isinstance(raw, dict):
        raise _invalid(".", f"invalid type: {_kind(raw)}, expected an object")
    _only_keys(raw, ("tokens",), ".")
    if "tokens" not in raw:
        raise _invalid(".", "missing field `tokens`")
    tokens = raw["tokens"]
    if not isinstance(tokens, dict):
        raise _invalid("tokens", f"invalid type: {_kind(tokens)}, expected a map")
    allows: Dict[str, types.Decision_Allow] = {}
    for token, entry in tokens.items():
        at = f"tokens.{token}"
        if not isinstance(entry, dict):
            raise _invalid(at, f"invalid type: {_kind(entry)}, expected an object")
        _only_keys(entry, ("principal", "context", "usage_key"), at)
        if "principal" not in entry:
            raise _invalid(at, "missing field `principal`")
        principal = entry["principal"]
        if not isinstance(principal, str):
            raise _invalid(f"{at}.principal", f"invalid type: {_kind(principal)}, expected a string")
        context: List[Tuple[str, str]] = []
        if "context" in entry:
            ctx = entry["context"]
            if not isinstance(ctx, dict):
                raise _invalid(f"{at}.context", f"invalid type: {_kind(ctx)}, expected a map")
            for k, v in ctx.items():
                if not isinstance(v, str):
                    raise _invalid(f"{at}.context.{k}", f"invalid type: {_kind(v)}, expected a string")
                context.append((k, v))
            context.sort(key=lambda kv: kv[0])
        context.append(LANG)
        usage_key: Optional[str] = entry.get("usage_key")
        if usage_key is not None and not isinstance(usage_key, str):
            raise _invalid(f"{at}.usage_key", f"invalid type: {_kind(usage_key)}, expected a string")
        allows[token] = types.Decision_Allow(types.Allow(principal, context, usage_key))
    return allows


# None until the first call; then the token map, or the error every call fails with.
_state: Union[None, str, Dict[str, types.Decision_Allow]] = None


def _setup() -> Union[str, Dict[str, types.Decision_Allow]]:
    try:
        return _parse_config(config.get())
    except ConfigError as e:
        error = f"plugin setup failed: {e}"
        log.log(log.Level.ERROR, f"py-authorizer: {error}")
        return error


def _token_of(raw: str) -> Optional[str]:
    """The token in an identity value, or None when the value is empty or malformed."""
    value = _TRIM.sub("", raw)
    m = _ASCII_SPACE.search(value)
    if m is None:
        return None if value == "" or value.lower() == "bearer" else value
    scheme = value[: m.start()]
    token = _TRIM_START.sub("", value[m.start() + 1 :])
    well_formed = scheme.lower() == "bearer" and token != "" and not _ASCII_SPACE.search(token)
    return token if well_formed else None


class WitWorld(wit_world.WitWorld):
    def authorize(self, identity: List[Tuple[str, str]], request: types.Request) -> types.Decision:
        global _state
        if _state is None:
            _state = _setup()
        if isinstance(_state, str):
            raise Err(_state)  # becomes `err(string)` of the export's result
        token = _token_of(identity[0][1]) if identity else None
        if token is None:
            return UNAUTHORIZED
        return _state.get(token, DENY)
