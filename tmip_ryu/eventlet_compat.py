"""Restore ``eventlet.wsgi.ALREADY_HANDLED`` so that Ryu 4.34 imports.

``ryu/app/wsgi.py`` in Ryu 4.34 imports that constant, which eventlet
removed in 0.30.3, and no eventlet release old enough to have it runs on
Python 3.10 or newer.  Ryu uses it only to mark a websocket response as
already sent, and this project serves no websocket, so any unique object
will do.  Ryu's own repository made the same change after its last
release.

The virtual environment imports this module at interpreter start through
a ``.pth`` file that ``scripts/setup-venv.sh`` writes.  It only installs an
import hook: eventlet is imported, and patched, when ``ryu.app.wsgi`` is
first imported, so interpreters that never load Ryu's web server pay
nothing.
"""

import importlib.abc
import sys

_TRIGGER = 'ryu.app.wsgi'


def restore_already_handled():
    """Set ``eventlet.wsgi.ALREADY_HANDLED`` when eventlet lacks it."""
    import eventlet.wsgi

    if not hasattr(eventlet.wsgi, 'ALREADY_HANDLED'):
        eventlet.wsgi.ALREADY_HANDLED = object()


class _PatchBeforeRyuWsgi(importlib.abc.MetaPathFinder):
    """Import hook that patches eventlet just before ``ryu.app.wsgi``."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname == _TRIGGER:
            sys.meta_path.remove(self)
            restore_already_handled()
        # Returning None lets the regular finders load the module.
        return None


def install():
    """Install the import hook once per interpreter."""
    if not any(isinstance(f, _PatchBeforeRyuWsgi) for f in sys.meta_path):
        sys.meta_path.insert(0, _PatchBeforeRyuWsgi())


install()
