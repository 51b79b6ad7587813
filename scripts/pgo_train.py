#!/usr/bin/env python3
"""The part of scripts/pgo.sh's training run that wrk cannot do: requests
of every shape once in a while, and the calls that follow a bid.

    pgo_train.py [--must-bid] BID_ADDR ADMIN_ADDR PUBLIC_URL ROUNDS BODY.json...

Posts each body ROUNDS times over one kept-alive connection (bids, no-bids
and refusals alike), then calls what the bids' answers carry, as exchanges
and browsers would: win notices for most bids (some at a price above the
bid, charged at the bid), billing notices for some of those, loss notices for
the rest, and the impression, click and event URLs in the markup. Then a
few malformed requests and notices, and the admin port's probes and
metrics. The counts only have to be large enough for the compiler to see
these paths as warm rather than never run; wrk weighs the bid path itself.

Exits non-zero when no body was answered with a bid, or with --must-bid
when any body never was; when no win or loss notice was accepted; when no
tracking call was: the profile would then miss the paths it exists to
train.
"""

import http.client
import json
import re
import sys


class Conn:
    """One kept-alive connection, reopened when the server closes it."""

    def __init__(self, addr):
        self.host, port = addr.rsplit(":", 1)
        self.port = int(port)
        self.conn = None

    def call(self, method, path, body=None, headers=None):
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
            try:
                self.conn.request(method, path, body=body, headers=headers or {})
                resp = self.conn.getresponse()
                data = resp.read()
                if resp.getheader("connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                return resp.status, data
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                if attempt == 1:
                    raise
        raise AssertionError("unreachable")


def path_of(url, public):
    """A URL the bidder wrote under its public URL, as a path to call."""
    if not url.startswith(public):
        return None
    return url[len(public):]


def fill_macros(url, price):
    url = url.replace("${AUCTION_PRICE}", price)
    # Loss reasons and any other macro an exchange would fill in.
    return re.sub(r"\$\{[A-Z_]+\}", "1", url)


def main():
    args = sys.argv[1:]
    must_bid = args[:1] == ["--must-bid"]
    if must_bid:
        args = args[1:]
    bid_addr, admin_addr, public, rounds = args[:4]
    public = public.rstrip("/")
    names = args[4:]
    bodies = [open(p, "rb").read() for p in names]
    bids = Conn(bid_addr)
    json_headers = {"Content-Type": "application/json"}
    v26 = dict(json_headers, **{"x-openrtb-version": "2.6"})

    answered = []
    statuses = {}
    bid_on = set()
    for r in range(int(rounds)):
        for i, body in enumerate(bodies):
            headers = v26 if (r + i) % 2 else json_headers
            status, data = bids.call("POST", "/openrtb2/bid", body, headers)
            statuses[status] = statuses.get(status, 0) + 1
            if status == 200:
                answered.append(json.loads(data))
                bid_on.add(i)

    urls = re.compile(re.escape(public) + r"/(?:track|px)/[^\"'<>\[\]\s\\]+")
    wins = losses = accepted = lost = tracked = 0
    for n, resp in enumerate(answered):
        for seat in resp.get("seatbid", []):
            for bid in seat.get("bid", []):
                price = bid.get("price", 0)
                if n % 5 == 4:
                    loss = path_of(bid.get("lurl", ""), public)
                    if loss:
                        status, _ = bids.call("GET", fill_macros(loss, "%.4f" % (price * 0.8)))
                        losses += 1
                        lost += status == 200
                    continue
                win = path_of(bid.get("nurl", ""), public)
                if win:
                    # One in seven at a price past the bid: charged at
                    # the bid (the cap).
                    over = n % 7 == 3
                    status, _ = bids.call("GET", fill_macros(win, "%.4f" % (price * (1.5 if over else 0.7))))
                    wins += 1
                    accepted += status == 200
                    billing = path_of(bid.get("burl", ""), public)
                    if billing and n % 3 == 0:
                        bids.call("GET", fill_macros(billing, "%.4f" % (price * 0.7)))
                for url in urls.findall(bid.get("adm", "")):
                    path = path_of(url.replace("&amp;", "&"), public)
                    if path:
                        status, _ = bids.call("GET", fill_macros(path, "1"))
                        tracked += 200 <= status < 400

    # Malformed input: refused, never charged.
    for body in (b"", b"{", b'{"id":1,"imp":[]}', b"[]", b'{"id":"x","imp":[{"id":"1"}]}'):
        bids.call("POST", "/openrtb2/bid", body, json_headers)
    for path in ("/notice/win?b=00&s=00&price=1", "/notice/win", "/track/click?b=1", "/nowhere"):
        bids.call("GET", path)

    admin = Conn(admin_addr)
    for _ in range(20):
        for path in ("/healthz", "/readyz", "/metrics"):
            admin.call("GET", path)

    print(
        "pgo_train: %d requests (%s), %d win notices (%d accepted), %d loss notices (%d accepted), %d tracking calls accepted"
        % (
            sum(statuses.values()),
            ", ".join("%d: %d" % kv for kv in sorted(statuses.items())),
            wins,
            accepted,
            losses,
            lost,
            tracked,
        )
    )
    never = [names[i] for i in range(len(bodies)) if i not in bid_on]
    if must_bid and never:
        sys.exit("pgo_train: never answered with a bid: " + ", ".join(never))
    if not answered or not accepted or not lost or not tracked:
        sys.exit("pgo_train: no bid, or no win or loss notice or tracking call accepted: the bidder did not run its paths")


if __name__ == "__main__":
    main()
