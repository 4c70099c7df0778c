"""A long serve: serve.py on 127.0.0.1 under mixed traffic at its queue bound, then every answer
compared with the server's own /metrics, and its memory over time.

    python3 bench/long_serve.py                     # 10 minutes; writes bench/faults_serve.json and FAULTS.md
    python3 bench/long_serve.py --minutes 1 --out /tmp/s.json

The model is bench/run.py --load's (a U-Net of ngf 64 at crop 64, as a MINDIR), served with
--max_queue 2 and --request_timeout 60; 6 clients send, each as soon as its last answer came:
good PNGs of 64-128 px, uploads declaring 3000x3000 pixels (refused from the header), malformed
files, slow uploads (a body sent in pieces over about 3 s) and aborted ones (the connection closed
halfway through the body). Every upload but the aborted must get an answer; the server's
/metrics counts by status must equal the client's (the aborted ones the server counts too, as it
saw them); the server's resident memory, sampled every 5 s, must not grow after the warm-up.
"""
import argparse
import datetime
import json
import math
import os
import random
import re
import socket
import sys
import tempfile
import threading
import time
from collections import Counter

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as bench_run  # noqa: E402 (bench/run.py: the model and the server of the load bench)
from faults_report import write_section  # noqa: E402
from src.utils.files import atomic_write_text  # noqa: E402
from src.utils.progress import progress_bar  # noqa: E402

RESULTS = os.path.join(REPO, "bench", "faults_serve.json")
KINDS = ["good"] * 6 + ["oversized", "malformed", "slow", "aborted"]
WARM_UP_S = 60
SAMPLE_S = 5  # the server's memory is sampled this often
CLIENTS, MAX_QUEUE = 6, 2


def multipart(name, content, boundary="longserveboundary"):
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode()
    return head + content + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def raw_post(port, name, content, pieces=1, pause=0.0, abort=False):
    """POST /translate over a socket of our own (pieces and pauses, or closed halfway): the
    status answered, or None for an aborted upload."""
    body, content_type = multipart(name, content)
    head = (f"POST /translate HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", port), timeout=120) as connection:
        connection.sendall(head)
        if abort:
            connection.sendall(body[: len(body) // 2])
            connection.shutdown(socket.SHUT_RDWR)
            return None
        step = max(1, len(body) // pieces)
        for start in range(0, len(body), step):
            connection.sendall(body[start:start + step])
            time.sleep(pause)
        answer = b""
        while b"\r\n" not in answer:
            chunk = connection.recv(65536)
            if not chunk:
                break
            answer += chunk
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1") else "no answer"


def metrics_counts(url):
    import httpx
    text = httpx.get(f"{url}/metrics", timeout=30, trust_env=False).text
    counts = Counter()
    for endpoint, status, value in re.findall(
            r'pix2pix_http_requests_total\{endpoint="([^"]+)",status="(\d+)"\} ([0-9.e+]+)', text):
        if endpoint == "/translate":
            counts[int(status)] += int(float(value))
    return counts


def rss_mb(pid):
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024


def long_serve(minutes, seed=0):
    import httpx
    folder = tempfile.mkdtemp(prefix="long_serve_")
    bench_run.graph_context()
    mindir = bench_run.exported_full_size(64, folder)
    _, good = bench_run.load_uploads(20, 20, np.random.default_rng(seed))
    good = list(good.items())
    oversized = bench_run.load_uploads(10, 1, np.random.default_rng(seed))[0]
    oversized = next(content for kind, _, content in oversized if kind == "oversized")
    extra = ["--max_queue", str(MAX_QUEUE), "--request_timeout", "60"]
    sent, answers, latencies, lock = Counter(), Counter(), {kind: [] for kind in KINDS}, threading.Lock()
    memory = []
    with bench_run.running_server("--mindir", mindir, os.path.join(folder, "server.log"), good[0], extra) as (url, server):
        port = int(url.rsplit(":", 1)[1])
        before = metrics_counts(url)
        started = time.monotonic()
        deadline = started + 60 * minutes

        def client(index):
            rng = random.Random(seed * 100 + index)
            with httpx.Client(base_url=url, timeout=120, trust_env=False) as http:
                while time.monotonic() < deadline:
                    kind = rng.choice(KINDS)
                    name, content = rng.choice(good)
                    began = time.monotonic()
                    if kind in ("good", "oversized", "malformed"):
                        upload = {"good": (name, content), "oversized": ("bomb.png", oversized),
                                  "malformed": ("cut.png", content[: len(content) // 3])}[kind]
                        try:
                            status = http.post("/translate", files={"file": upload}).status_code
                        except httpx.HTTPError as err:
                            status = f"no answer ({type(err).__name__})"
                    elif kind == "slow":
                        status = raw_post(port, name, content, pieces=6, pause=0.5)
                    else:
                        status = raw_post(port, name, content, abort=True)
                    with lock:
                        sent[kind] += 1
                        answers[(kind, status)] += 1
                        if status == 200:
                            latencies[kind].append(time.monotonic() - began)

        threads = [threading.Thread(target=client, args=(index,)) for index in range(CLIENTS)]
        for thread in threads:
            thread.start()
        # One sample at the start, one every SAMPLE_S, one while the last answers come in.
        with progress_bar(total=math.ceil(60 * minutes / SAMPLE_S) + 1, desc="serve", unit="sample") as bar:
            while any(thread.is_alive() for thread in threads):
                memory.append((round(time.monotonic() - started, 1), round(rss_mb(server.pid), 1)))
                with lock:
                    bar.set_postfix_str(f"{sum(sent.values())} uploads, RSS {memory[-1][1]:.0f} MB", refresh=False)
                time.sleep(SAMPLE_S)
                bar.update()
        elapsed = time.monotonic() - started
        time.sleep(2)  # the aborted uploads' last answers recorded
        after = metrics_counts(url)
    server_counts = {status: after[status] - before.get(status, 0) for status in after if after[status] - before.get(status, 0)}
    client_counts = Counter()
    for (kind, status), count in answers.items():
        if isinstance(status, int):
            client_counts[status] += count
    aborted = sent["aborted"]
    unanswered = sum(count for (kind, status), count in answers.items() if kind != "aborted" and not isinstance(status, int))
    # The server answers an aborted upload too (to nobody): its counts hold those beyond the client's.
    beyond = {status: server_counts.get(status, 0) - client_counts.get(status, 0) for status in set(server_counts) | set(client_counts)}
    counts_equal = all(value >= 0 for value in beyond.values()) and sum(beyond.values()) == aborted
    warm = [mb for seconds, mb in memory if seconds >= WARM_UP_S]
    growth = (max(warm[len(warm) // 2:]) - max(warm[: len(warm) // 2])) if len(warm) >= 4 else None
    good_latencies = latencies["good"]
    return {"date": datetime.date.today().isoformat(), "minutes": minutes, "seconds": round(elapsed, 1),
            "clients": CLIENTS, "max_queue": MAX_QUEUE, "sent": dict(sent),
            "answers": {f"{kind} {status}": count for (kind, status), count in sorted(answers.items(), key=str)},
            "unanswered": unanswered, "server counts": {str(k): v for k, v in sorted(server_counts.items())},
            "client counts": {str(k): v for k, v in sorted(client_counts.items())},
            "server counts beyond the client's (aborted uploads)": {str(k): v for k, v in sorted(beyond.items()) if v},
            "counts equal": counts_equal,
            "p50 ms": round(1000 * float(np.percentile(good_latencies, 50)), 1) if good_latencies else None,
            "p99 ms": round(1000 * float(np.percentile(good_latencies, 99)), 1) if good_latencies else None,
            "memory mb (seconds, RSS)": memory, "rss growth after warm-up mb": growth,
            "memory flat": growth is not None and growth < 50,
            "passed": unanswered == 0 and counts_equal and growth is not None and growth < 50}


def write_report(result):
    rss = [mb for _, mb in result["memory mb (seconds, RSS)"]]
    beyond = result["server counts beyond the client's (aborted uploads)"] or "none"
    lines = ["## A long serve (`python3 bench/long_serve.py`)", "",
             f"{result['date']}: serve.py on 127.0.0.1 for {result['seconds'] / 60:.1f} minutes, a U-Net of ngf 64 at "
             f"crop 64 as a MINDIR, --max_queue {result['max_queue']}, {result['clients']} clients sending without pause: "
             "good PNGs, uploads over --max_pixels, malformed files, slow uploads (6 pieces, 0.5 s apart) and aborted "
             "ones (closed halfway through the body).", "",
             "| upload, answer | count |", "| --- | --- |"]
    lines += [f"| {key.replace('aborted None', 'aborted (closed by the client, no answer read)')} | {count} |"
              for key, count in result["answers"].items()]
    lines += ["", "| check | result |", "| --- | --- |",
              f"| uploads without an answer (the aborted ones aside) | {result['unanswered']} |",
              f"| /metrics counts of /translate by status, against the client's | "
              f"{'equal' if result['counts equal'] else 'DIFFERENT'} (beyond the client's: "
              f"{beyond}, the aborted uploads' "
              f"{result['sent'].get('aborted', 0)}) |",
              f"| good uploads' latency, p50 / p99 | {result['p50 ms']} / {result['p99 ms']} ms |",
              f"| server RSS: after start-up, peak, growth from the first to the second half after "
              f"{WARM_UP_S} s | {rss[0]:.0f} MB, {max(rss):.0f} MB, {result['rss growth after warm-up mb']:+.1f} MB |",
              f"| **passed** | **{'yes' if result['passed'] else 'NO: see faults_serve.json'}** |", "",
              "Each answer and the memory samples: [faults_serve.json](faults_serve.json).", ""]
    write_section("serve", lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--minutes", type=float, default=10.0, help="how long the traffic runs (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the traffic's mix (default: %(default)s)")
    parser.add_argument("--out", default=None, help="results JSON; default bench/faults_serve.json and bench/FAULTS.md")
    args = parser.parse_args()
    result = long_serve(args.minutes, args.seed)
    atomic_write_text(args.out or RESULTS, json.dumps(result, indent=1) + "\n")
    if args.out is None:
        write_report(result)
    print(f"{sum(result['sent'].values())} uploads, {result['unanswered']} unanswered, counts equal: "
          f"{result['counts equal']}, RSS growth {result['rss growth after warm-up mb']} MB, p99 {result['p99 ms']} ms; "
          f"passed: {result['passed']}")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
