"""The official Compose JSON schema, brought up to date where it lags.

The vendored schema is the 2021 revision shipped with docker-compose 1.29.2.
The Compose spec has grown since; ``modernise`` adds what valid modern files
use, so they pass. Every change is listed here, nothing else is altered:

top level
    ``name`` (string), ``include`` (a list; the loader expands it,
    ``include.py``, before validating), ``models`` (accepted so the loader can
    say what it is and what to do instead).
service
    ``annotations``, ``attach``, ``cgroup``, ``develop``, ``gpus``,
    ``label_file``, ``uts``, ``use_api_socket``, ``pull_refresh_after``,
    ``post_start``/``pre_start``/``pre_stop`` (the current spec's hook
    objects), ``provider``, ``models`` (the last is rejected later as not
    supported); ``pull_policy`` any
    string (the loader checks the current spec's values, time-based ones
    too); ``devices`` long form; ``env_file`` long form
    (``path``/``required``/``format``); ``secrets``/``configs`` ``mode`` as a
    string (octal); ``x-compound`` (``xcompound_schema.XCOMPOUND_SCHEMA``).
service parts
    ``depends_on.*``: ``restart``, ``required``; ``healthcheck``:
    ``start_interval``; ``build``: ``dockerfile_inline``,
    ``additional_contexts``, ``ssh``, ``secrets``, ``tags``, ``platforms``,
    ``no_cache``, ``pull``, ``privileged``, ``cache_to``, ``entitlements``,
    ``no_cache_filter``, ``provenance``, ``sbom``, ``ulimits``; ``ports``
    long form: ``host_ip``, ``name``, ``app_protocol``, string ``target`` and
    ``published``; ``volumes`` long form: ``type`` enum, ``bind``
    ``create_host_path``/``selinux``/``recursive``, ``volume``
    ``subpath``/``labels``, ``tmpfs.mode``, string ``tmpfs.size``, ``image``;
    ``networks.*``: ``mac_address``, ``driver_opts``, ``interface_name``,
    ``gw_priority``; ``deploy.resources.limits.pids``.
shared definitions
    ``list_or_dict`` values may be booleans; ``extra_hosts`` map values may be
    lists of addresses.
top-level resources
    ``networks.*.enable_ipv4``, ``secrets.*.environment``,
    ``configs.*.content`` and ``configs.*.environment``.
"""

from __future__ import annotations

import copy
import json
from functools import lru_cache
from importlib import resources
from typing import Any

from .xcompound_schema import PROJECT_XCOMPOUND_SCHEMA, XCOMPOUND_SCHEMA

_STRING = {"type": "string"}
_BOOL = {"type": "boolean"}
_X: dict[str, Any] = {"^x-": {}}
_LIST_OR_DICT = {"$ref": "#/definitions/list_or_dict"}
_STRING_OR_LIST = {"$ref": "#/definitions/string_or_list"}
_OBJECT = {"type": "object"}


def _strict(properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
        "patternProperties": _X,
        **extra,
    }


def _hook(*, required: bool) -> dict[str, Any]:
    """A lifecycle hook as the current spec defines it (service_hook; pre_start's
    command is optional and it may name an image and per_replica)."""
    props: dict[str, Any] = {
        "command": {"oneOf": [{"type": "null"}, _STRING, {"type": "array", "items": _STRING}]},
        "user": _STRING,
        "privileged": {"type": ["boolean", "string"]},
        "working_dir": _STRING,
        "environment": _LIST_OR_DICT,
    }
    if required:
        return _strict(props, required=["command"])
    props.update({"image": _STRING, "per_replica": {"type": ["boolean", "string"]}})
    return _strict(props)


def modernise(schema: dict[str, Any]) -> dict[str, Any]:
    """A copy of the 2021 schema with the later additions listed in the module doc."""
    s = copy.deepcopy(schema)
    s.pop("$schema", None)
    defs = s["definitions"]
    top = s["properties"]
    top["name"] = {"type": "string"}
    top["include"] = {"type": "array"}
    top["models"] = {"type": "object"}  # refused by the loader, with what it is
    top["x-compound"] = PROJECT_XCOMPOUND_SCHEMA

    defs["list_or_dict"]["oneOf"][0]["patternProperties"][".+"]["type"] = [
        "string",
        "number",
        "boolean",
        "null",
    ]
    defs["extra_hosts"] = {
        "oneOf": [
            {
                "type": "object",
                "patternProperties": {
                    ".+": {
                        "oneOf": [_STRING, {"type": "array", "items": _STRING}],
                    }
                },
                "additionalProperties": False,
            },
            {"type": "array", "items": _STRING, "uniqueItems": True},
        ]
    }

    svc = defs["service"]["properties"]
    svc.update(
        {
            "annotations": _LIST_OR_DICT,
            "attach": _BOOL,
            "cgroup": {"type": "string", "enum": ["host", "private"]},
            "develop": {"type": ["object", "null"]},
            "gpus": {"oneOf": [{"type": "string", "enum": ["all"]}, {"type": "array"}]},
            "label_file": _STRING_OR_LIST,
            "uts": _STRING,
            "use_api_socket": _BOOL,
            "pull_refresh_after": _STRING,
            "post_start": {"type": "array", "items": _hook(required=True)},
            "pre_start": {"type": "array", "items": _hook(required=False)},
            "pre_stop": {"type": "array", "items": _hook(required=True)},
            "provider": _strict(
                {
                    "type": _STRING,
                    "options": {
                        "type": "object",
                        "patternProperties": {
                            "^.+$": {
                                "oneOf": [
                                    {"type": ["string", "number", "boolean"]},
                                    {
                                        "type": "array",
                                        "items": {"type": ["string", "number", "boolean"]},
                                    },
                                ]
                            }
                        },
                    },
                },
                required=["type"],
            ),
            "models": {"oneOf": [{"$ref": "#/definitions/list_of_strings"}, _OBJECT]},
            "x-compound": XCOMPOUND_SCHEMA,
            "extra_hosts": {"$ref": "#/definitions/extra_hosts"},
            "devices": {
                "type": "array",
                "items": {
                    "oneOf": [
                        _STRING,
                        _strict(
                            {"source": _STRING, "target": _STRING, "permissions": _STRING},
                            required=["source"],
                        ),
                    ]
                },
            },
            "env_file": {
                "oneOf": [
                    _STRING,
                    {
                        "type": "array",
                        "items": {
                            "oneOf": [
                                _STRING,
                                {
                                    "type": "object",
                                    "properties": {
                                        "path": _STRING,
                                        "required": _BOOL,
                                        "format": _STRING,
                                    },
                                    "required": ["path"],
                                    "additionalProperties": False,
                                },
                            ]
                        },
                    },
                ]
            },
        }
    )
    # the current spec's pattern: time-based policies too (daily, weekly, every_12h, refresh)
    svc["pull_policy"].pop("enum")
    svc["pull_policy"]["type"] = "string"
    for key in ("secrets", "configs"):
        svc[key]["items"]["oneOf"][1]["properties"]["mode"] = {"type": ["number", "string"]}

    depends_entry = svc["depends_on"]["oneOf"][1]["patternProperties"]["^[a-zA-Z0-9._-]+$"]
    depends_entry["properties"].update({"restart": _BOOL, "required": _BOOL})
    depends_entry["patternProperties"] = _X

    defs["healthcheck"]["properties"]["start_interval"] = {"type": "string", "format": "duration"}

    build = svc["build"]["oneOf"][1]["properties"]
    build.update(
        {
            "dockerfile_inline": _STRING,
            "additional_contexts": _LIST_OR_DICT,
            "ssh": _LIST_OR_DICT,
            "secrets": {"$ref": "#/definitions/service_config_or_secret"},
            "tags": {"type": "array", "items": _STRING},
            "platforms": {"type": "array", "items": _STRING},
            "no_cache": _BOOL,
            "pull": _BOOL,
            "privileged": _BOOL,
            "cache_to": {"type": "array", "items": _STRING},
            "entitlements": {"type": "array", "items": _STRING},
            "no_cache_filter": _STRING_OR_LIST,
            "provenance": {"type": ["string", "boolean"]},
            "sbom": {"type": ["string", "boolean"]},
            "ulimits": svc["ulimits"],
            "extra_hosts": {"$ref": "#/definitions/extra_hosts"},
        }
    )
    defs["service_config_or_secret"] = copy.deepcopy(svc["secrets"])

    port = svc["ports"]["items"]["oneOf"][2]["properties"]
    port.update(
        {
            "host_ip": _STRING,
            "name": _STRING,
            "app_protocol": _STRING,
            "target": {"type": ["integer", "string"]},
            "published": {"type": ["string", "integer"]},
        }
    )

    volume = svc["volumes"]["items"]["oneOf"][1]["properties"]
    volume["type"] = {
        "type": "string",
        "enum": ["bind", "volume", "tmpfs", "cluster", "npipe", "image"],
    }
    volume["bind"]["properties"].update(
        {
            "create_host_path": _BOOL,
            "selinux": {"type": "string", "enum": ["z", "Z"]},
            "recursive": {
                "type": "string",
                "enum": ["enabled", "disabled", "writable", "readonly"],
            },
        }
    )
    volume["volume"]["properties"].update({"subpath": _STRING, "labels": _LIST_OR_DICT})
    volume["tmpfs"]["properties"].update(
        {
            "size": {"oneOf": [{"type": "integer", "minimum": 0}, _STRING]},
            "mode": {"type": ["number", "string"]},
        }
    )
    volume["image"] = _strict({"subpath": _STRING})

    network_entry = svc["networks"]["oneOf"][1]["patternProperties"]["^[a-zA-Z0-9._-]+$"]
    network_entry["oneOf"][0]["properties"].update(
        {
            "mac_address": _STRING,
            "driver_opts": {"type": "object"},
            "interface_name": _STRING,
            "gw_priority": {"type": "number"},
        }
    )

    limits = defs["deployment"]["properties"]["resources"]["properties"]["limits"]["properties"]
    limits["pids"] = {"type": "integer"}

    defs["network"]["properties"]["enable_ipv4"] = _BOOL
    defs["secret"]["properties"]["environment"] = _STRING
    defs["config"]["properties"]["content"] = _STRING
    defs["config"]["properties"]["environment"] = _STRING
    return s


@lru_cache(maxsize=1)
def compose_schema() -> dict[str, Any]:
    """The modernised Compose schema (loaded once)."""
    text = resources.files("compound.spec").joinpath("schema/compose-spec.json").read_text()
    loaded: dict[str, Any] = json.loads(text)
    return modernise(loaded)
