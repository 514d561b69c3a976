"""A second process on a request store, for test_log_store: run as `python _log_child.py MODE STATE_DIR DB ...`.

write N: write N rows (ids c0..), print each id and its time after writing it, then sleep until killed.
flushed N: write N rows, flush(), print "flushed", then sleep until killed.
admit KEY_NAME RPM NOW TIMES: admit TIMES requests of the key at NOW; print how many were allowed.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from taoplan.spec.gateway_settings import GatewaySettings
from taoplan.traffic.log import Key, RequestRow, open_store


def row(i: int) -> RequestRow:
    return RequestRow(
        f"c{i}", time.time(), "child", None, "svc", "j1", "local-docker", "cosmos-rl", 1, None, "gateway",
        200, None, 1.0, 0.5, None, 1, 2, 3, 10, 20, None, None, None,
    )  # fmt: skip


def main() -> None:
    mode, state_dir, database = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    secret = None if database == "sqlite" else "TAOPLAN_PG_PASSWORD"
    store = open_store(state_dir, GatewaySettings(database=database, password_secret=secret))
    if mode == "write":
        for i in range(int(sys.argv[4])):
            r = row(i)
            store.write(r)
            print(i, repr(r.time), flush=True)
            time.sleep(0.0005)
    elif mode == "flushed":
        for i in range(int(sys.argv[4])):
            store.write(row(i))
        store.flush()
        print("flushed", flush=True)
    elif mode == "admit":
        key = Key(sys.argv[4], None, int(sys.argv[5]), None)
        now, times = float(sys.argv[6]), int(sys.argv[7])
        print("ready", flush=True)
        sys.stdin.readline()  # start together
        print(sum(store.keys.admit(key, now) is None for _ in range(times)), flush=True)
        store.close()
        return
    time.sleep(600)


if __name__ == "__main__":
    main()
