# Independent info-hash: a tiny bencode reader that finds the raw span of the top-level `info` value.
import hashlib, sys
def end_of(b, i):
    c = b[i:i+1]
    if c == b'i': return b.index(b'e', i) + 1
    if c in (b'l', b'd'):
        i += 1
        while b[i:i+1] != b'e': i = end_of(b, i)
        return i + 1
    colon = b.index(b':', i); return colon + 1 + int(b[i:colon])
for path in sys.argv[1:]:
    b = open(path, 'rb').read(); i = 1
    while b[i:i+1] != b'e':
        kend = end_of(b, i); key = b[b.index(b':', i)+1:kend]; vend = end_of(b, kend)
        if key == b'info': print(hashlib.sha1(b[kend:vend]).hexdigest(), path.split('/')[-1])
        i = vend
