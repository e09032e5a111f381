"""The flow-level durability check of conformance/object-cli.sh: what a server acknowledged
survives a kill -9.

    object_durability.py upload ACCOUNT_URL TOKEN ACKED_FILE [THREADS]
        PUTs objects (1 KiB to 4 MiB of random bytes, each named after its MD5) with THREADS
        (default 8) in flight until the server stops answering; appends the name of every
        object the server acknowledged (201) to ACKED_FILE, flushed at once. Run it in the
        background and kill -9 the server under it.
    object_durability.py verify ACCOUNT_URL TOKEN ACKED_FILE
        GETs every acknowledged object and checks its bytes against its name (MD5); prints
        `N acknowledged, N whole, N missing, N damaged` and exits 1 unless all are whole.
The container is `durability` (made by `upload`).
"""
import hashlib
import http.client
import os
import random
import sys
import threading
import urllib.parse

CONTAINER = "durability"


def conn(url):
    u = urllib.parse.urlsplit(url)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=30), u.path


def request(url, method, token, path="", body=None):
    c, base = conn(url)
    try:
        c.request(method, base + path, body=body, headers={"X-Auth-Token": token})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def upload(url, token, acked_file, threads=8):
    status, _ = request(url, "PUT", token, "/" + CONTAINER)
    if status not in (201, 202):
        sys.exit("container PUT: %d" % status)
    out = open(acked_file, "a")
    lock = threading.Lock()
    stop = threading.Event()

    def worker():
        c, base = conn(url)
        while not stop.is_set():
            body = os.urandom(random.choice([1024, 64 * 1024, 1024 * 1024, 4 * 1024 * 1024]))
            name = hashlib.md5(body).hexdigest()
            try:
                c.request("PUT", "%s/%s/%s" % (base, CONTAINER, name), body=body,
                          headers={"X-Auth-Token": token, "Content-Type": "application/octet-stream"})
                r = c.getresponse()
                r.read()
            except Exception:
                stop.set()  # the server is gone
                return
            if r.status == 201:
                with lock:
                    out.write(name + "\n")
                    out.flush()
                    os.fsync(out.fileno())

    ts = [threading.Thread(target=worker) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def verify(url, token, acked_file):
    names = [n.strip() for n in open(acked_file) if n.strip()]
    whole = missing = damaged = 0
    for name in names:
        status, body = request(url, "GET", token, "/%s/%s" % (CONTAINER, name))
        if status == 404:
            missing += 1
            print("missing: %s" % name)
        elif status != 200 or hashlib.md5(body).hexdigest() != name:
            damaged += 1
            print("damaged: %s (status %d, %d bytes)" % (name, status, len(body)))
        else:
            whole += 1
    print("%d acknowledged, %d whole, %d missing, %d damaged" % (len(names), whole, missing, damaged))
    return len(names) > 0 and whole == len(names)


if __name__ == "__main__":
    mode, url, token, acked = sys.argv[1:5]
    if mode == "upload":
        upload(url, token, acked, int(sys.argv[5]) if len(sys.argv) > 5 else 8)
    elif mode == "verify":
        sys.exit(0 if verify(url, token, acked) else 1)
    else:
        sys.exit(__doc__)
