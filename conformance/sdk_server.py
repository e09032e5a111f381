"""openstacksdk (Debian's python3-openstacksdk) boots a server the way most
tooling does: create_server(..., wait=True, auto_ip=True) must end with an
ACTIVE server holding a fixed and a floating address. Prints the address
types it saw (`fixed floating`) and exits 0; anything else exits 1. The
server and its floating IP are deleted either way."""
import sys

import openstack

NAME = 'sdk-server'


def main() -> int:
    conn = openstack.connect(cloud='stratus')
    server = None
    try:
        server = conn.create_server(
            NAME, image='busybox', flavor='c1.container', network='private',
            wait=True, auto_ip=True, timeout=180)
        types = sorted({a.get('OS-EXT-IPS:type') for addrs in server.addresses.values() for a in addrs})
        print(server.status, ' '.join(t for t in types if t))
        return 0 if server.status == 'ACTIVE' and types == ['fixed', 'floating'] else 1
    except Exception as e:  # the check prints why; the cleanup below still runs
        print(f'{type(e).__name__}: {e}')
        return 1
    finally:
        if server is not None or conn.get_server(NAME):
            conn.delete_server(NAME, wait=True, delete_ips=True, timeout=120)


if __name__ == '__main__':
    sys.exit(main())
