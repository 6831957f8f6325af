"""Entry application loaded by ``ryu-manager tmip_ryu.apps``.

``ryu-manager`` loads only the RyuApp classes defined in the module it is
given, so this module defines a thin entry app and requires the apps that
do the work.
"""

from ryu.base import app_manager

app_manager.require_app('tmip_ryu.apps.controller')


class TmipEntry(app_manager.RyuApp):
    """Marks the start of tmip_ryu in the log; the work is elsewhere."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.logger.info('tmip_ryu loaded')
