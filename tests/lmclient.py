"""lmclient.py - a standard-library client of LMCache's lm:// protocol.

It reproduces, byte for byte, what LMCache's LMCServerConnector sends and expects
(lmcache/v1/protocol.py, lmcache/v1/storage_backend/connector/lm_connector.py): a 186-byte
request header struct.pack("iiiiiiiii150s", command, length, fmt, dtype, location, shape0..3,
key.encode().ljust(150)), and a 36-byte reply struct "iiiiiiiii" of code, length, fmt,
dtype, shape0..3, location.  PUT gets no reply.  Only the standard library is used, so the
tests need neither torch nor LMCache.

    c = LMClient("127.0.0.1", port)
    c.put("model@1@0@abc@bfloat16", data, fmt=1, dtype=3, shape=(2, 4, 16, 64))
    data, fmt, dtype, shape = c.get("model@1@0@abc@bfloat16")
"""
import socket
import struct

PUT, GET, EXIST, LIST, HEALTH = 1, 2, 3, 4, 5
SUCCESS, FAIL = 200, 400
MAX_KEY_LENGTH = 150
REQ = struct.Struct("iiiiiiiii%ds" % MAX_KEY_LENGTH)
REPLY = struct.Struct("iiiiiiiii")
assert REQ.size == 186 and REPLY.size == 36


def pack_request(command, key, length=0, fmt=1, dtype=2, shape=(0, 0, 0, 0), location=0):
    """The bytes of one request header, exactly as LMCache's ClientMetaMessage.serialize()."""
    k = key.encode()
    assert len(k) <= MAX_KEY_LENGTH
    return REQ.pack(command, length, fmt, dtype, location, *shape, k.ljust(MAX_KEY_LENGTH))


def unpack_reply(b):
    """(code, length, fmt, dtype, shape, location) from 36 reply bytes."""
    code, length, fmt, dtype, s0, s1, s2, s3, location = REPLY.unpack(b)
    return code, length, fmt, dtype, (s0, s1, s2, s3), location


class LMClient:
    def __init__(self, host, port, timeout=10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)

    def close(self):
        self.sock.close()

    def _recv_exact(self, n):
        buf = bytearray(n)
        view = memoryview(buf)
        got = 0
        while got < n:
            r = self.sock.recv_into(view[got:], n - got)
            if r == 0:
                raise ConnectionError("server closed the connection")
            got += r
        return bytes(buf)

    def reply(self):
        return unpack_reply(self._recv_exact(REPLY.size))

    def put(self, key, data, fmt=1, dtype=2, shape=None):
        if shape is None:
            shape = (len(data), 0, 0, 0)
        self.sock.sendall(pack_request(PUT, key, len(data), fmt, dtype, shape))
        self.sock.sendall(data)

    def get(self, key):
        """(data, fmt, dtype, shape), or None on a miss."""
        self.sock.sendall(pack_request(GET, key))
        code, length, fmt, dtype, shape, _ = self.reply()
        if code != SUCCESS:
            return None
        return self._recv_exact(length), fmt, dtype, shape

    def exists(self, key):
        self.sock.sendall(pack_request(EXIST, key))
        return self.reply()[0] == SUCCESS

    def health(self):
        self.sock.sendall(pack_request(HEALTH, ""))
        return self.reply()[0] == SUCCESS

    def list(self):
        self.sock.sendall(pack_request(LIST, ""))
        return self.reply()[0]
