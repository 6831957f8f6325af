"""The TMip controller app (placeholder until the controller lands)."""

from ryu.app import wsgi
from ryu.base import app_manager
from ryu.controller import ofp_event
from ryu.controller.handler import CONFIG_DISPATCHER, set_ev_cls
from ryu.ofproto import ofproto_v1_3, ofproto_v1_4


class TmipController(app_manager.RyuApp):
    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION, ofproto_v1_4.OFP_VERSION]
    _CONTEXTS = {'wsgi': wsgi.WSGIApplication}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        kwargs['wsgi'].register(TmipRest, {})

    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def switch_features_handler(self, ev):
        datapath = ev.msg.datapath
        ofproto = datapath.ofproto
        parser = datapath.ofproto_parser
        actions = [parser.OFPActionOutput(ofproto.OFPP_CONTROLLER,
                                          ofproto.OFPCML_NO_BUFFER)]
        inst = [parser.OFPInstructionActions(ofproto.OFPIT_APPLY_ACTIONS,
                                             actions)]
        datapath.send_msg(parser.OFPFlowMod(
            datapath=datapath, priority=0, match=parser.OFPMatch(),
            instructions=inst))
        self.logger.info('switch %016x connected', datapath.id)


class TmipRest(wsgi.ControllerBase):
    @wsgi.route('tmip', '/tmip/cells', methods=['GET'])
    def list_cells(self, req, **kwargs):
        return wsgi.Response(content_type='application/json', body=b'[]')
