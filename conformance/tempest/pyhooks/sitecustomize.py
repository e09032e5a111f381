# Loaded by conformance/tempest.sh's Tempest runs (their PYTHONPATH has this
# directory). Tempest's SubnetsClient.delete_subnet sleeps 10 s before every
# subnet DELETE: a workaround in the client for Neutron, which tears ports down
# asynchronously. Stratus removes a subnet's DHCP and auto-address allocations
# in the DELETE's own transaction, so the sleep only costs time (every subnet
# a test or its cleanup deletes: most of the network run's 25 minutes). Here
# delete_subnet sends the same DELETE without the sleep; nothing else of Tempest
# changes. Debian's own sitecustomize (an apport hook) is run first.
import importlib.abc
import importlib.util
import os
import sys

_debian = '/usr/lib/python%d.%d/sitecustomize.py' % sys.version_info[:2]
if os.path.exists(_debian):
    with open(_debian) as f:
        exec(compile(f.read(), _debian, 'exec'), {'__name__': 'debian_sitecustomize'})

_TARGET = 'tempest.lib.services.network.subnets_client'


def _without_sleep(module):
    def delete_subnet(self, subnet_id):
        return self.delete_resource('/subnets/%s' % subnet_id)
    module.SubnetsClient.delete_subnet = delete_subnet


class _PatchSubnetsClient(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != _TARGET:
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_patch(module):
            exec_module(module)
            _without_sleep(module)
        spec.loader.exec_module = exec_and_patch
        return spec


sys.meta_path.insert(0, _PatchSubnetsClient())
