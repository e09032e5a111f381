# Loaded by conformance/tempest.sh's Tempest runs (their PYTHONPATH has this
# directory). Two changes to how Tempest's client waits, none to what it sends
# or checks; Debian's own sitecustomize (an apport hook) is run first.
#
# 1. Tempest's SubnetsClient.delete_subnet sleeps 10 s before every subnet
#    DELETE: a workaround in the client for Neutron, which tears ports down
#    asynchronously. Stratus removes a subnet's DHCP and auto-address
#    allocations in the DELETE's own transaction, so the sleep only costs time
#    (every subnet a test or its cleanup deletes: most of the network run's 25
#    minutes). Here delete_subnet sends the same DELETE without the sleep.
#
# 2. Tempest declares [compute], [volume], [image] and [network]
#    build_interval (the sleep between two polls of a status) an integer
#    number of seconds, so 1 s is the shortest poll there is, and every wait
#    for a status lasts at least a second although Stratus usually gets there
#    in a fraction of one. Here those options are read as numbers with a
#    fraction (oslo.config's Float), so tempest-conf.d can set 0.2; the waits
#    and their build_timeout are unchanged.
import importlib.abc
import importlib.util
import os
import sys

_debian = '/usr/lib/python%d.%d/sitecustomize.py' % sys.version_info[:2]
if os.path.exists(_debian):
    with open(_debian) as f:
        exec(compile(f.read(), _debian, 'exec'), {'__name__': 'debian_sitecustomize'})


def _subnet_delete_without_sleep(module):
    def delete_subnet(self, subnet_id):
        return self.delete_resource('/subnets/%s' % subnet_id)
    module.SubnetsClient.delete_subnet = delete_subnet


def _fractional_build_interval(module):
    from oslo_config import types
    # module._opts: (group, options) pairs, registered when the configuration is first read
    for _group, opts in module._opts:
        for opt in opts:
            if opt.name == 'build_interval':
                opt.type = types.Float(min=0)


# module name -> what is done to it once it has run
_PATCHES = {
    'tempest.lib.services.network.subnets_client': _subnet_delete_without_sleep,
    'tempest.config': _fractional_build_interval,
}


class _PatchAfterImport(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        patch = _PATCHES.get(name)
        if patch is None:
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
            patch(module)
        spec.loader.exec_module = exec_and_patch
        return spec


sys.meta_path.insert(0, _PatchAfterImport())
