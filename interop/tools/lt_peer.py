#!/usr/bin/env python3
"""A libtorrent leecher that keeps seeding after it completes. usage: TORRENT DIR IP PORT SECS"""
import sys, time, warnings
import libtorrent as lt
warnings.simplefilter("ignore")
tor, save, ip, port, secs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
ses = lt.session({
    "listen_interfaces": f"{ip}:{port}", "outgoing_interfaces": ip,
    "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False, "enable_dht": False,
    "allow_multiple_connections_per_ip": True,
    "enable_outgoing_utp": False, "enable_incoming_utp": False,
    "alert_mask": lt.alert.category_t.error_notification,
})
p = lt.add_torrent_params(); p.ti = lt.torrent_info(tor); p.save_path = save
h = ses.add_torrent(p)
t0, done = time.time(), False
while time.time() - t0 < secs:
    for a in ses.pop_alerts():
        print("ALERT", a.message(), flush=True)
    st = h.status()
    if st.is_seeding and not done:
        done = True
        print(f"COMPLETE after {time.time() - t0:.2f}s", flush=True)
    time.sleep(0.2)
