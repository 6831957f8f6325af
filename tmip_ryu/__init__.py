"""Transparent Mobile IP on Ryu: the controller side of tmip_ryu.

Every module that imports ``ryu`` lives in this package.
"""
