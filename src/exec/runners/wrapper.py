# Runs one Millrace python3 step: loads <dir>/main.py as module `main`, calls main() with the
# declared parameters from <dir>/args.json and writes {"ok": ..., "result"|"error": ...} to
# <dir>/result.json. The result never travels through stdout, so prints cannot corrupt it.
import json
import os
import sys


def _call_args(main, args):
    code = getattr(main, "__code__", None)
    if code is None:
        import inspect

        params = inspect.signature(main).parameters.values()
        if any(p.kind is p.VAR_KEYWORD for p in params):
            return [], dict(args)
        return [], {p.name: args[p.name] for p in params if p.name in args}
    if code.co_flags & 0x08:  # CO_VARKEYWORDS: main(**kwargs) takes everything
        return [], dict(args)
    n_posonly = code.co_posonlyargcount
    names = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
    positional = []
    for name in names[:n_posonly]:
        if name not in args:
            break
        positional.append(args[name])
    return positional, {n: args[n] for n in names[n_posonly:] if n in args}


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
        return 0, json.dumps({"ok": True, "result": result}, default=str, allow_nan=False)
    except (ValueError, TypeError, RecursionError) as e:
        message = f"main returned a value that cannot be encoded as JSON: {e}"
        return 1, json.dumps(_error("ResultNotJson", message, None))


_directory = sys.argv[1]
_code, _envelope = _encode(_directory)
with open(os.path.join(_directory, "result.json"), "w", encoding="utf-8") as _f:
    _f.write(_envelope)
sys.stdout.flush()
sys.exit(_code)
