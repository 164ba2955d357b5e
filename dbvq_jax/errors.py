"""User errors as one line on stderr: what is wrong, with its root cause (--verbose shows the traceback)."""

from __future__ import annotations

import contextlib
import os
import re
import sys

from absl import flags

HINT = "  (--verbose shows the traceback)"


def root_cause(error: BaseException) -> BaseException:
  """The innermost exception of a chain of `raise ... from` and exceptions raised while handling others."""
  seen = {id(error)}
  while (inner := _inner(error)) is not None and id(inner) not in seen:
    error, seen = inner, seen | {id(inner)}
  return error


def _inner(error: BaseException) -> BaseException | None:
  if error.__cause__ is not None or error.__suppress_context__:
    return error.__cause__
  return error.__context__


def text(error: BaseException) -> str:
  """An exception's message on one line (ml_collections' escaped KeyError text unescaped)."""
  text = str(error).replace("\\n", " ").replace("\\'", "'")
  if len(text) > 1 and text[0] == text[-1] and text[0] in "'\"":  # a KeyError's repr-quoted message
    text = text[1:-1]
  return re.sub(r"\s+", " ", text).strip() or type(error).__name__


def one_line(error: BaseException) -> str:
  """'<message>' (with its type when it is one bare word, as a KeyError's key is) and, when the root cause says
  something the message does not, '; cause: <Type>: <message>'."""
  message, cause = text(error), root_cause(error)
  if " " not in message and message != type(error).__name__:
    message = f"{type(error).__name__}: {message}"
  if cause is not error and text(cause) not in message:
    message += f"; cause: {type(cause).__name__}: {text(cause)[:300]}"
  return message


@contextlib.contextmanager
def reported(verbose: bool):
  """Runs the body; an exception ends the process with `error: <one line>` unless verbose (then it propagates)."""
  try:
    yield
  except Exception as e:  # every failure reaches the user as one line; --verbose keeps the traceback
    if verbose:
      raise
    sys.exit(f"error: {one_line(e)}{HINT}")


def parse_flags(argv: list[str]) -> list[str]:
  """absl's flag parsing with a bad flag, config file or --config.key override reported as one line."""
  with reported("--verbose" in argv or "--verbose=true" in argv):
    for arg in argv:
      path = arg.removeprefix("--config=").partition(":")[0]
      if arg.startswith("--config=") and not os.path.isfile(path):
        raise FileNotFoundError(f"no config file {path!r}: give a path like configs/toy.py, from the repository root")
      if arg.startswith("--config="):  # the configs import their siblings as `configs.<name>`, from any directory
        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(path))))
    try:
      return flags.FLAGS(argv)
    except AttributeError as e:  # ml_collections: an override of a key the config does not have
      raise KeyError(_bad_key(argv, text(e))) from None
    except flags.Error as e:  # an error inside get_config arrives as its flattened traceback: keep its last line
      raised = re.findall(r"(?:^|\s)(\w+(?:Error|Exception)): (.+?)(?=$|\s+File \")", text(e))
      if not raised:
        raise
      config = next((a for a in argv if a.startswith("--config=")), "--config")
      raise ValueError(f"{config}: {raised[-1][1]}") from None


def workdir_arg(argv: list[str]) -> str:
  """The value of --workdir in a raw argv ('--workdir=DIR' or '--workdir DIR'), '' when absent."""
  for i, arg in enumerate(argv):
    if arg.startswith("--workdir="):
      return arg.removeprefix("--workdir=")
    if arg == "--workdir" and i + 1 < len(argv):
      return argv[i + 1]
  return ""


def _bad_key(argv: list[str], text: str) -> str:
  """'--config.a.b=v: the config has no key b (did you mean c?)' from ml_collections' message."""
  key = re.match(r"'?(\w+)", text).group(1)
  override = next((a.split("=")[0] for a in argv if re.match(rf"--config\.(\w+\.)*{key}(=|$)", a)), key)
  hint = re.search(r'Did you mean "(\w+)"', text)
  return f"{override}: the config has no key {key!r}" + (f" (did you mean {hint.group(1)!r}?)" if hint else "")
