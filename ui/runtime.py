"""The page server's process settings that keep every script run cheap.

Streamlit ends every script run, fragment reruns included, with two full garbage collections: its own
(``runner.postScriptGC``, turned off in ``.streamlit/config.toml``) and one inside
``keras.backend.clear_session()``, which it calls whenever Keras is imported, as it is here. With
TensorFlow loaded the heap holds about half a million objects and each collection takes 0.13 s or more
of CPU under the GIL. A Train page polling its job every second then cost the server most of a core,
and every other user's page waited on it (measured with ``py-spy``: 84% of the server's samples were
these two collections while two users trained).

:func:`lighten_script_cleanup` keeps Streamlit's clean-up (Keras' global state and matplotlib's figures
are still reset after each run) without the collection, and freezes what the imports left behind once
TensorFlow has loaded, so that Python's own, automatic collections skip it. Python's generational
collector still frees cycles as it always does.
"""
from __future__ import annotations

import gc
import sys
import threading

_lock = threading.Lock()
_installed = False
_frozen = False


def _clean_problem_modules_without_collecting() -> None:
    """Streamlit's ``_clean_problem_modules``, less the full collection (``free_memory=False``)."""
    keras = sys.modules.get("keras")
    if keras is not None:
        try:
            keras.backend.clear_session(free_memory=False)
        except Exception:  # noqa: BLE001 - as Streamlit does: a failed clean-up never fails the page
            pass
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:
        try:
            plt.close("all")
        except Exception:  # noqa: BLE001
            pass
    _freeze_once_loaded()


def _freeze_once_loaded() -> None:
    """After TensorFlow's import has finished (cvcore.device knows the device), collect once and move
    every object left to the permanent generation: later collections no longer walk TensorFlow's."""
    global _frozen
    if _frozen:
        return
    from cvcore import device

    if device.peek() is None:
        return
    with _lock:
        if not _frozen:
            gc.collect()
            gc.freeze()
            _frozen = True


def lighten_script_cleanup() -> bool:
    """Replace Streamlit's end-of-run clean-up with one that does not collect garbage (once per process).

    Returns:
        True when the clean-up is the light one; False when this Streamlit has no such hook (a newer
        version changed it): the app still works, with the slower clean-up.

    Example:
        >>> lighten_script_cleanup()
        True
        >>> from streamlit.runtime.scriptrunner import script_runner
        >>> script_runner._clean_problem_modules is _clean_problem_modules_without_collecting
        True
    """
    global _installed
    from streamlit.runtime.scriptrunner import script_runner

    if not hasattr(script_runner, "_clean_problem_modules"):
        return False
    with _lock:
        if not _installed:
            script_runner._clean_problem_modules = _clean_problem_modules_without_collecting
            _installed = True
    return True
