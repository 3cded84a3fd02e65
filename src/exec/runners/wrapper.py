# Runs one Millrace python3 step: loads <dir>/main.py as module `main`, calls main() with the
# declared parameters from <dir>/args.json and writes {"ok": ..., "result"|"error": ...} to
# <dir>/result.json. The result never travels through stdout, so prints cannot corrupt it.
# Arguments and results follow Windmill's wrapper: a parameter without a value gets None, None
# for a parameter with a default lets the default apply, `bytes` / `datetime` parameters are
# decoded from base64 / ISO 8601, and results are encoded as Windmill encodes them.
import base64
import json
import math
import os
import sys


def _signature(main):
    """(takes **kwargs, [(name, positional only, has default, default, annotation)])."""
    code = getattr(main, "__code__", None)
    if code is None:  # a callable object: inspect is slower to import, so only here
        import inspect

        params = inspect.signature(main).parameters.values()
        takes_all = any(p.kind is p.VAR_KEYWORD for p in params)
        named = [p for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        return takes_all, [
            (p.name, p.kind is p.POSITIONAL_ONLY, p.default is not p.empty, p.default, p.annotation)
            for p in named
        ]
    n_positional = code.co_argcount
    names = code.co_varnames[: n_positional + code.co_kwonlyargcount]
    defaults = main.__defaults__ or ()
    kwdefaults = main.__kwdefaults__ or {}
    annotations = getattr(main, "__annotations__", None) or {}
    first_default = n_positional - len(defaults)
    params = []
    for i, name in enumerate(names):
        if i < n_positional:
            has_default = i >= first_default
            default = defaults[i - first_default] if has_default else None
        else:
            has_default = name in kwdefaults
            default = kwdefaults.get(name)
        posonly = i < code.co_posonlyargcount
        params.append((name, posonly, has_default, default, annotations.get(name)))
    return bool(code.co_flags & 0x08), params  # 0x08: CO_VARKEYWORDS


def _decoder(annotation):
    # Also for string annotations (`from __future__ import annotations`).
    if annotation is bytes or annotation == "bytes":
        return "bytes", base64.b64decode
    dt = sys.modules.get("datetime")
    if (dt is not None and annotation is dt.datetime) or annotation in (
        "datetime",
        "datetime.datetime",
    ):
        import datetime

        return "datetime", datetime.datetime.fromisoformat
    return None


def _decoded(name, annotation, value):
    decoder = _decoder(annotation) if value is not None else None
    if decoder is None:
        return value
    kind, decode = decoder
    try:
        return decode(value)
    except (TypeError, ValueError) as e:
        message = f"parameter `{name}` is annotated {kind}, but its value cannot be read as one: {e}"
        raise _StepFailure("InvalidArgument", message) from None


def _call_args(main, args):
    takes_all, params = _signature(main)
    args = dict(args)
    for name, _, _, _, annotation in params:
        if name in args:
            args[name] = _decoded(name, annotation, args[name])
    if takes_all:
        return [], args
    positional, keywords = [], {}
    for name, posonly, has_default, default, _ in params:
        value = args.get(name)
        defaulted = value is None and has_default
        if posonly:
            positional.append(default if defaulted else value)
        elif not defaulted:
            keywords[name] = value
    return positional, keywords


def _run(directory):
    path = os.path.join(directory, "main.py")
    with open(os.path.join(directory, "args.json"), encoding="utf-8") as f:
        args = json.load(f)
    with open(path, encoding="utf-8") as f:
        source = f.read()
    module = type(sys)("main")
    module.__file__ = path
    sys.modules["main"] = module
    sys.argv = [path]
    exec(compile(source, path, "exec"), module.__dict__)
    main = getattr(module, "main", None)
    if not callable(main):
        raise _StepFailure("MainNotFound", "the script defines no function `main`")
    positional, keywords = _call_args(main, args)
    return main(*positional, **keywords)


def _windmill_json(value):
    # bytes → base64, NaN and infinities → null, tuples → lists (json does that), anything else
    # without a JSON form → str() (datetime, Decimal, …) through `default=str` below.
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _windmill_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_windmill_json(v) for v in value]
    return value


class _StepFailure(Exception):
    def __init__(self, name, message):
        super().__init__(message)
        self.step_error_name = name


def _error(name, message, stack):
    return {"ok": False, "error": {"name": name, "message": message, "stack": stack}}


def _encode(directory):
    try:
        result = _run(directory)
    except BaseException as e:  # noqa: BLE001 - every failure of the script fails the step
        import traceback

        name = getattr(e, "step_error_name", type(e).__name__)
        # The stack starts at the script: the wrapper's own frames (compiled from "<string>") go.
        tb = e.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename == "<string>":
            tb = tb.tb_next
        stack = "".join(traceback.format_exception(type(e), e, tb or e.__traceback__))
        return 1, json.dumps(_error(name, str(e), stack))
    try:
        encoded = {"ok": True, "result": _windmill_json(result)}
        return 0, json.dumps(encoded, default=str, allow_nan=False)
    except (ValueError, TypeError, RecursionError) as e:
        message = f"main returned a value that cannot be encoded as JSON: {e}"
        return 1, json.dumps(_error("ResultNotJson", message, None))


_directory = sys.argv[1]
_code, _envelope = _encode(_directory)
with open(os.path.join(_directory, "result.json"), "w", encoding="utf-8") as _f:
    _f.write(_envelope)
sys.stdout.flush()
sys.exit(_code)
