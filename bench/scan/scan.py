#!/usr/bin/python3
"""bench/scan helper: the page corpus, E2Guardian's weighted phrase lists, the proxy runs and
the report. Called by bench/scan/run; standard library only (Debian's /usr/bin/python3).

    scan.py corpus --libs DIR --top FILE.csv.xz --out DIR [--pages N] [--seed N]
    scan.py e2glist --libs DIR --out FILE
    scan.py measure --work DIR --haven BIN --stubdns FILE ... (see main)
    scan.py report RESULTS DOC
"""

import argparse
import gzip
import lzma
import math
import os
import random
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

# Helpers shared with bench/proxy (same machine, same conventions).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "proxy"))
from proxy import (Proc, cpu_ticks, fnum, free_port, http_once, parse_wrk,  # noqa: E402
                   request_bytes, set_opt, wait_ready)

WEIGHTS = {1: 1, 2: 2, 3: 5, 4: 10, 5: 20}  # haven's score per severity (monitor/match.h)
E2G_LIMIT = 100000000  # naughtynesslimit: no page is ever blocked


def say(msg):
    print("bench/scan: %s" % msg, file=sys.stderr, flush=True)


def die(msg):
    say(msg)
    sys.exit(1)


# --------------------------------------------------------------------------------------------
# Keyword libraries


def lib_phrases(libdir):
    """[(lang, theme, phrase, severity)] from every *.lib in libdir."""
    out = []
    for path in sorted(Path(libdir).glob("*.lib")):
        lang, theme, sev = "?", None, 3
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                t = shlex.split(line, comments=True)
            except ValueError:
                continue
            if not t:
                continue
            if t[0] == "language" and len(t) > 1:
                lang = t[1]
            elif t[0] == "theme" and len(t) > 1:
                theme, sev = t[1], 3
            elif t[0] == "}":
                theme = None
            elif t[0] == "severity" and theme and len(t) > 1:
                sev = int(t[1])
            elif t[0] == "phrase" and theme and len(t) > 1:
                s = sev
                if len(t) > 2 and re.fullmatch(r"[1-5]", t[2]):
                    s = int(t[2])
                out.append((lang, theme, t[1].lower(), s))
    return out


def cmd_e2glist(a):
    """haven's phrases as an E2Guardian weighted phrase list: '< phrase ><weight>'. A '*'
    ending a phrase (a prefix) becomes an open right edge: '< starv><w>'."""
    phrases = lib_phrases(a.libs)
    seen, lines = set(), ["# haven's keyword libraries (monitor/*.lib) for E2Guardian, "
                          "written by bench/scan/scan.py e2glist: weight = haven's score "
                          "per severity (1, 2, 5, 10, 20)"]
    for lang, theme, p, sev in phrases:
        if p.endswith("*"):
            key = "< %s>" % p[:-1]
        else:
            key = "< %s >" % p
        if key in seen:
            continue
        seen.add(key)
        lines.append("%s<%d>" % (key, WEIGHTS[sev]))
    Path(a.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("e2g_haven_phrases=%d" % len(seen))


def e2g_count(listfile, seen=None):
    """Weighted phrases in an E2Guardian list, following .Include<...>."""
    seen = set() if seen is None else seen
    n = 0
    try:
        data = Path(listfile).read_bytes().decode("latin-1")
    except OSError:
        return 0
    for line in data.splitlines():
        line = line.strip()
        m = re.match(r"\.Include<([^>]+)>", line)
        if m:
            if m.group(1) not in seen:
                seen.add(m.group(1))
                n += e2g_count(m.group(1), seen)
        elif line.startswith("<"):
            n += 1
    return n


# --------------------------------------------------------------------------------------------
# The corpus: real text from this machine in HTML pages


def troff_text(raw):
    out = []
    for line in raw.splitlines():
        if line.startswith((".", "'")):
            m = re.match(r"\.(SH|SS|B|I|BR|IR|IP|TP)\s+(.*)", line)
            if m and m.group(1) in ("B", "I", "BR", "IR") and m.group(2):
                out.append(m.group(2).replace('"', ""))
            continue
        line = re.sub(r"\\f[A-Z0-9PR]|\\f\([A-Z]{2}|\\\*\(..|\\\*.|\\\(..|\\[&|^e-]", "", line)
        line = line.replace("\\", "")
        if line.strip():
            out.append(line)
    return " ".join(out)


def sentences(text):
    text = re.sub(r"\s+", " ", text)
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+(?=[A-Z])", text)
            if 40 <= len(s.strip()) <= 400 and sum(c.isalpha() for c in s) > 0.7 * len(s)]


def gather_text(rng, want_chars):
    """Sentences from man pages (English sections), /usr/share/doc and Python docstrings."""
    files = []
    for root in ("/usr/share/man/man1", "/usr/share/man/man5", "/usr/share/man/man8",
                 "/usr/share/man/man3", "/usr/share/man/man7"):
        files += [("man", p) for p in sorted(Path(root).glob("*.gz"))] if Path(root).is_dir() \
            else []
    docs = []
    for p in sorted(Path("/usr/share/doc").rglob("*")):
        n = p.name.lower()
        if p.is_file() and (n.startswith(("readme", "news", "changelog")) or n.endswith(
                (".txt", ".md", ".html"))) and p.stat().st_size < 2000000:
            docs.append(("doc", p))
    rng.shuffle(files)
    rng.shuffle(docs)
    out, total, counts = [], 0, {"man": 0, "doc": 0, "pydoc": 0}
    # Python docstrings: real English prose.
    import pydoc  # noqa: F401  (imported for its modules below)
    for name in sorted(sys.modules.copy()) + ["argparse", "asyncio", "collections", "email",
                                               "http.client", "json", "logging", "socket",
                                               "subprocess", "threading", "unittest", "xml"]:
        mod = sys.modules.get(name)
        if mod is None:
            try:
                mod = __import__(name)
            except Exception:
                continue
        for obj in [mod] + [getattr(mod, k, None) for k in dir(mod)]:
            doc = getattr(obj, "__doc__", None)
            if isinstance(doc, str):
                s = sentences(doc)
                out += s
                total += sum(map(len, s))
                counts["pydoc"] += len(s)
    pools = [files, docs]
    i = 0
    while total < want_chars and (files or docs):
        pool = pools[i % 2] if pools[i % 2] else pools[(i + 1) % 2]
        i += 1
        kind, p = pool.pop()
        try:
            raw = gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes()
            text = raw.decode("utf-8")
        except (OSError, UnicodeDecodeError, EOFError, gzip.BadGzipFile):
            continue
        if kind == "man":
            text = troff_text(text)
        elif p.suffix == ".html":
            text = re.sub(r"<[^>]*>", " ", text)
        s = sentences(text)
        out += s
        total += sum(map(len, s))
        counts[kind] += len(s)
    return out, counts


def link_names(top):
    names = []
    with lzma.open(top, "rt") as f:
        next(f)
        for line in f:
            t = line.split(",")
            if len(t) > 2:
                names.append(t[2])
    return names


# Sentences that carry a library phrase, as a pupil might write them on a forum.
CARRIERS = ["Honestly sometimes I feel like {p} and nobody at school would notice.",
            "My friend keeps saying {p} in the group chat and I don't know what to do.",
            "Someone posted \"{p}\" under the video and it got loads of likes.",
            "I searched {p} last night because I couldn't sleep.",
            "The thread was titled {p} and had hundreds of replies."]

CSS = ("body{font-family:system-ui,sans-serif;margin:0;color:#222}"
       ".nav a{padding:4px 8px;text-decoration:none}.post{margin:1em 0;padding:1em;"
       "border-bottom:1px solid #ddd}.sidebar li{list-style:none}"
       "@media (max-width:600px){.sidebar{display:none}}")


def script_block(rng, n):
    words = ["var", "function", "return", "window", "document", "config", "track", "data",
             "push", "length", "event", "listener", "null", "true", "JSON"]
    s = []
    while sum(map(len, s)) < n:
        a, b = rng.choice(words), rng.choice(words)
        s.append("function %s_%d(x){if(x&&x.%s){return %s.%s(x)}return null};"
                 % (a, rng.randrange(1000), b, a, b))
    return "<script>%s</script>\n" % "".join(s)


def make_page(rng, size, sents, names, phrases, share):
    """An HTML page of about size bytes: head with meta, style and scripts, a nav bar of
    links, posts of paragraphs, a sidebar, a footer. Each paragraph holds a sentence with a
    library phrase with probability share. Returns (html, phrases put in)."""
    title = rng.choice(sents)[:70]
    head = ["<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">",
            "<title>%s</title>" % esc(title),
            "<meta name=\"description\" content=\"%s\">" % esc(rng.choice(sents)[:150]),
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
            "<style>%s</style>" % CSS, script_block(rng, rng.randrange(2000, 8000)),
            "</head><body>\n"]
    nav = ["<div class=\"nav\">"]
    for name in rng.sample(names, 30):
        nav.append("<a href=\"https://www.%s/\" title=\"%s\">%s</a>"
                   % (name, name, name.split(".")[0].capitalize()))
    nav.append("</div>\n<main>\n")
    out = head + nav
    body_len = sum(map(len, out))
    used = 0
    while body_len < size * 0.85:
        post = ["<div class=\"post\"><h2>%s</h2>" % esc(rng.choice(sents)[:80])]
        for _ in range(rng.randrange(2, 6)):
            para = [esc(rng.choice(sents)) for _ in range(rng.randrange(2, 7))]
            if rng.random() < share:
                p = rng.choice(phrases).rstrip("*")
                para.insert(rng.randrange(len(para) + 1), esc(rng.choice(CARRIERS).format(p=p)))
                used += 1
            if rng.random() < 0.3:
                para[0] = "<b>%s</b>" % para[0]
            if rng.random() < 0.2:
                para[-1] = "<a href=\"/t/%d\">%s</a>" % (rng.randrange(99999), para[-1])
            post.append("<p>%s</p>" % " ".join(para).replace(" &amp; ", " &amp; "))
        post.append("<span class=\"meta\">Posted by user%d &middot; %d replies</span></div>\n"
                    % (rng.randrange(5000), rng.randrange(200)))
        if rng.random() < 0.15:
            post.append(script_block(rng, rng.randrange(500, 3000)))
        out += post
        body_len += sum(map(len, post))
    side = ["</main><ul class=\"sidebar\">"]
    side += ["<li><a href=\"https://%s/\">%s</a></li>" % (n, n) for n in rng.sample(names, 20)]
    side.append("</ul><footer>&copy; 2026 Forum &ndash; <a href=\"/privacy\">Privacy</a>"
                "</footer>")
    html = "".join(out + side)
    html += script_block(rng, max(0, size - len(html.encode()) - 40))
    html += "</body></html>\n"
    return html, used


def esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"',
                                                                                        "&quot;")


def cmd_corpus(a):
    rng = random.Random(a.seed)
    sizes = [int(math.exp(rng.uniform(math.log(20 * 1024), math.log(200 * 1024))))
             for _ in range(a.pages)]
    sents, counts = gather_text(rng, 6000000)
    if len(sents) < 1000:
        die("only %d sentences of text found on this machine" % len(sents))
    names = link_names(a.top)
    phrases = [p for lang, theme, p, sev in lib_phrases(a.libs)]
    out = Path(a.out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    total, used, with_phrase = 0, 0, 0
    for i, size in enumerate(sizes):
        html, n = make_page(rng, size, sents, names, phrases, a.share)
        data = html.encode("utf-8")
        (out / ("p%03d.html" % i)).write_bytes(data)
        total += len(data)
        used += n
        with_phrase += n > 0
    print("corpus_pages=%d" % a.pages)
    print("corpus_bytes=%d" % total)
    print("corpus_min_kb=%.0f" % (min(sizes) / 1024))
    print("corpus_max_kb=%.0f" % (max(sizes) / 1024))
    print("corpus_sentences=%d" % len(sents))
    print("corpus_sources=man %d, doc %d, pydoc %d" % (counts["man"], counts["doc"],
                                                      counts["pydoc"]))
    print("corpus_share=%s" % a.share)
    print("corpus_phrases_put=%d" % used)
    print("corpus_pages_with_phrase=%d" % with_phrase)


# --------------------------------------------------------------------------------------------
# Proxies


def nginx_conf(w, port):
    return """# bench/scan origin: one nginx process, no master, no access log.
daemon off;
master_process off;
worker_processes 1;
pid {w}/nginx.pid;
error_log {w}/error.log warn;
worker_rlimit_nofile 20000;
events {{ worker_connections 16384; multi_accept on; }}
http {{
    access_log off;
    client_body_temp_path {w}/tmp/body;
    proxy_temp_path {w}/tmp/proxy;
    fastcgi_temp_path {w}/tmp/fastcgi;
    uwsgi_temp_path {w}/tmp/uwsgi;
    scgi_temp_path {w}/tmp/scgi;
    types {{ text/html html; }}
    default_type text/html;
    sendfile on;
    tcp_nodelay on;
    keepalive_requests 10000000;
    keepalive_timeout 300s;
    open_file_cache max=1000;
    server {{
        listen 127.0.0.1:{port} backlog=8192;
        root {w}/www;
        location /search {{ default_type application/json; return 200 '{{"results":[]}}'; }}
    }}
}}
""".format(w=w, port=port)


def pages_lua(paths, host):
    out = ["paths = {%s}" % ",".join('"%s"' % p for p in paths),
           "i = 0",
           "request = function()",
           "  i = i % #paths + 1",
           "  return wrk.format(\"GET\", paths[i], {[\"Host\"] = \"%s\", "
           "[\"User-Agent\"] = \"Mozilla/5.0 bench/scan\", [\"Accept\"] = \"*/*\"})" % host,
           "end"]
    return "\n".join(out) + "\n"


def search_lua(port, words):
    out = ["words = {%s}" % ",".join('"%s"' % w for w in words),
           "n = 0",
           "request = function()",
           "  n = n + 1",
           "  local q = words[n % #words + 1] .. \"+\" .. words[(n * 7) % #words + 1] .. "
           "\"+\" .. n",
           "  return wrk.format(\"GET\", \"http://www.google.com:%d/search?q=\" .. q, "
           "{[\"Host\"] = \"www.google.com:%d\", [\"User-Agent\"] = \"Mozilla/5.0 bench/scan\"})"
           % (port, port),
           "end"]
    return "\n".join(out) + "\n"


def e2g_conf(w, etc, port, tport, mode, weighted):
    """Copy /etc/e2guardian/*.conf into w with phrase scanning set to mode and the weighted
    phrase list (None: the shipped one); returns the changes."""
    w.mkdir(parents=True, exist_ok=True)
    (w / "log").mkdir(exist_ok=True)
    os.chmod(w / "log", 0o777)
    opts = [("filterip", "127.0.0.1"), ("filterports", str(port)),
            ("transparenthttpsport", str(tport)), ("httpworkers", "500"),
            ("weightedphrasemode", str(mode)),
            ("loglocation", "'%s/log/access.log'" % w), ("dstatlocation",
                                                         "'%s/log/dstats.log'" % w),
            ("pidfilename", "'%s/e2guardian.pid'" % w)]
    text = (Path(etc) / "e2guardian.conf").read_text()
    for k, v in opts:
        text, _ = set_opt(text, k, v)
    (w / "e2guardian.conf").write_text(text)
    grp = (Path(etc) / "e2guardianf1.conf").read_text()
    grp, _ = set_opt(grp, "naughtynesslimit", str(E2G_LIMIT))
    changes = ["%s = %s" % kv for kv in opts]
    changes.append("naughtynesslimit = %d (e2guardianf1.conf)" % E2G_LIMIT)
    if weighted:
        old = "weightedphraselist = '%s/lists/weightedphraselist'" % etc
        if old not in grp:
            die("%s/e2guardianf1.conf has no weightedphraselist line to point at our list" % etc)
        grp = grp.replace(old, "weightedphraselist = '%s'" % weighted)
        changes.append("weightedphraselist = haven's phrases (e2guardianf1.conf)")
    (w / "e2guardianf1.conf").write_text(grp)
    return changes


class Bench:
    def __init__(self, a):
        self.a = a
        self.work = Path(a.work)
        self.res = open(self.work / "results.txt", "a")
        self.procs = []
        (self.work / "logs").mkdir(exist_ok=True)

    def put(self, k, v):
        self.res.write("%s=%s\n" % (k, v))
        self.res.flush()

    def start(self, name, cmd, cpu):
        p = Proc(name, cmd, cpu, self.work / "logs" / (name + ".log"))
        self.procs.append(p)
        return p

    def stop(self, p):
        p.stop()
        self.procs.remove(p)

    def stop_all(self):
        for p in reversed(self.procs):
            p.stop()
        self.procs = []

    def wrk(self, port, script, conns, seconds):
        cmd = ["taskset", "-c", str(self.a.load_cpu), "wrk", "-t1", "-c%d" % conns,
               "-d%ds" % seconds, "--latency", "--timeout", "10s", "-s", str(script),
               "http://127.0.0.1:%d/" % port]
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode != 0:
            die("wrk failed: %s" % out.stderr.strip())
        with open(self.work / "logs" / "wrk.log", "a") as f:
            f.write("$ %s\n%s\n" % (" ".join(cmd), out.stdout))
        r = parse_wrk(out.stdout)
        m = re.search(r"Latency\s+\S+\s+\S+\s+(\S+)", out.stdout)
        r["max"] = m.group(1) if m else "?"
        return r

    def setup(self):
        w = self.work
        for sub in ("origin/tmp", "haven-var", "req"):
            (w / sub).mkdir(parents=True, exist_ok=True)
        www = w / "origin" / "www"
        if www.exists() or www.is_symlink():
            www.unlink() if www.is_symlink() else shutil.rmtree(www)
        www.symlink_to(Path(self.a.corpus).resolve())
        self.ports = {k: free_port() for k in ("origin", "haven", "e2g", "e2g_tls")}
        (w / "origin" / "nginx.conf").write_text(nginx_conf(w / "origin", self.ports["origin"]))
        self.pages = sorted(p.name for p in Path(self.a.corpus).iterdir())
        self.sizes = {p: (Path(self.a.corpus) / p).stat().st_size for p in self.pages}
        self.mean_size = sum(self.sizes.values()) / len(self.sizes)
        origin = "127.0.0.1:%d" % self.ports["origin"]
        (w / "req" / "pages.lua").write_text(
            pages_lua(["http://%s/%s" % (origin, p) for p in self.pages], origin))
        words = ["volcano", "homework", "football", "weather", "minecraft", "recipes", "maths",
                 "history", "rivers", "planets", "poems", "music", "news", "dogs", "trains"]
        (w / "req" / "search.lua").write_text(search_lua(self.ports["origin"], words))
        (w / "req" / "plain.lua").write_text(
            pages_lua(["http://www.google.com:%d/search" % self.ports["origin"]],
                      "www.google.com:%d" % self.ports["origin"]))
        self.origin = self.start("nginx", ["nginx", "-c", str(w / "origin" / "nginx.conf"),
                                           "-p", str(w / "origin")], self.a.load_cpu)
        req = request_bytes("/" + self.pages[0], origin)
        wait_ready(self.ports["origin"], req, self.origin, 20)

    # ------------------------------------------------------------------------------ pages

    def check_pages(self, name, port):
        """Every page must come through the proxy whole (nothing blocked)."""
        origin = "127.0.0.1:%d" % self.ports["origin"]
        bad = 0
        for p in self.pages:
            status, _, body = http_once(port, request_bytes("http://%s/%s" % (origin, p),
                                                            origin))
            if status != 200 or len(body) != self.sizes[p]:
                bad += 1
        self.put("%s_pages_not_whole" % name, bad)
        if bad:
            say("%s: %d of %d pages did not come through whole" % (name, bad, len(self.pages)))

    def page_runs(self, name, proc, port):
        self.check_pages(name, port)
        self.wrk(port, self.work / "req" / "pages.lua", self.a.page_conns, 1)  # warm-up
        costs, mbps, cpu_use = [], [], []
        for _ in range(self.a.runs):
            hz = os.sysconf("SC_CLK_TCK")
            t0, c0 = time.monotonic(), cpu_ticks(proc.pid)
            r = self.wrk(port, self.work / "req" / "pages.lua", self.a.page_conns,
                         self.a.seconds)
            c1, t1 = cpu_ticks(proc.pid), time.monotonic()
            cpu_s = (c1 - c0) / hz
            mb = r.get("bytes", 0) / 1e6
            if mb <= 0 or r["non2xx"] or r.get("requests", 0) == 0:
                die("%s: wrk read %.1f MB, %d non-2xx" % (name, mb, r["non2xx"]))
            if r["bytes"] / r["requests"] < 0.5 * self.mean_size:
                die("%s: %.0f bytes per response, not the pages' %.0f (see logs/wrk.log)"
                    % (name, r["bytes"] / r["requests"], self.mean_size))
            costs.append(cpu_s / mb)
            mbps.append(mb / r.get("seconds", self.a.seconds))
            cpu_use.append(100.0 * cpu_s / (t1 - t0))
        self.put("%s_cpu_s_per_mb" % name, "%.6f" % statistics.median(costs))
        self.put("%s_cpu_s_per_mb_all" % name, ",".join("%.6f" % x for x in costs))
        self.put("%s_mbps" % name, "%.1f" % statistics.median(mbps))
        self.put("%s_cpu_pct" % name, "%.0f" % statistics.median(cpu_use))

    def e2g(self, name, mode, weighted):
        w = self.work / name
        changes = e2g_conf(w, self.a.e2g_etc, self.ports["e2g"], self.ports["e2g_tls"], mode,
                           weighted)
        self.put("%s_changes" % name, "; ".join(changes))
        pidfile = w / "e2guardian.pid"
        if pidfile.exists():
            pidfile.unlink()
        say("E2Guardian %s" % name)
        p = self.start(name, ["e2guardian", "-N", "-c", str(w / "e2guardian.conf")], self.a.cpu)
        origin = "127.0.0.1:%d" % self.ports["origin"]
        t = wait_ready(self.ports["e2g"], request_bytes("http://%s/%s" % (origin, self.pages[0]),
                                                        origin), p)
        self.put("%s_ready_s" % name, "%.2f" % t)
        self.page_runs(name, p, self.ports["e2g"])
        self.stop(p)

    def haven_conf(self, page_max):
        a, w = self.a, self.work
        (w / "haven.conf").write_text(
            "# bench/scan: haven serve on one core\n"
            "listen 127.0.0.1:%d\nworkers 1\npolicy %s\ndatabase %s\ndata-dir %s\n"
            "resolver 127.0.0.1:%d\ntimeout-drain 1s\nmonitor-page-max %s\n"
            "alert-syslog off\n"
            % (self.ports["haven"], a.policy, a.db, w / "haven-var", self.dns_port, page_max))
        return w / "haven.conf"

    def start_haven(self, name, page_max):
        conf = self.haven_conf(page_max)
        say("haven %s" % name)
        p = self.start(name, [self.a.haven, "serve", "--config", str(conf)], self.a.cpu)
        origin = "127.0.0.1:%d" % self.ports["origin"]
        t = wait_ready(self.ports["haven"], request_bytes("http://%s/%s" % (origin,
                                                                           self.pages[0]),
                                                          origin), p)
        self.put("%s_ready_s" % name, "%.2f" % t)
        return p

    def haven_pages(self, name, page_max):
        p = self.start_haven(name, page_max)
        self.page_runs(name, p, self.ports["haven"])
        self.stop(p)

    # ------------------------------------------------------------------------------ events

    def metrics(self):
        status, _, body = http_once(self.ports["haven"],
                                    request_bytes("/metrics", "127.0.0.1:%d"
                                                  % self.ports["haven"]))
        out = {}
        for line in body.decode("utf-8", "replace").splitlines():
            m = re.match(r"^(haven_records\w*)(\{[^}]*\})? (\d+)", line)
            if m:
                out[m.group(1) + (m.group(2) or "")] = int(m.group(3))
        return out

    def events(self):
        p = self.start_haven("haven_events", "256K")
        status, _, body = http_once(self.ports["haven"], request_bytes(
            "http://www.google.com:%d/search?q=probe" % self.ports["origin"],
            "www.google.com:%d" % self.ports["origin"]))
        if status != 200:
            die("haven: a search through the proxy gave %d: %r" % (status, body[:200]))
        for case, script in (("plain", "plain.lua"), ("search", "search.lua")):
            self.wrk(self.ports["haven"], self.work / "req" / script, self.a.conns, 1)
            rows = []
            for _ in range(self.a.runs):
                time.sleep(0.5)
                m0 = self.metrics()
                hz = os.sysconf("SC_CLK_TCK")
                c0 = cpu_ticks(p.pid)
                r = self.wrk(self.ports["haven"], self.work / "req" / script, self.a.conns,
                             self.a.seconds)
                c1 = cpu_ticks(p.pid)
                # The writer batches: give it a moment to write what the run queued.
                time.sleep(1.5)
                m1 = self.metrics()
                d = {k: m1.get(k, 0) - m0.get(k, 0) for k in m1}
                rows.append((r, d, (c1 - c0) / hz))
            med = sorted(rows, key=lambda x: x[0]["rps"])[len(rows) // 2]
            r, d, cpu_s = med
            k = "proxy_%s" % case
            self.put(k + "_rps", "%.0f" % r["rps"])
            self.put(k + "_rps_all", ",".join("%.0f" % x[0]["rps"] for x in rows))
            self.put(k + "_p50_ms", "%.2f" % r["p50_ms"])
            self.put(k + "_p99_ms", "%.2f" % r["p99_ms"])
            self.put(k + "_max", r["max"])
            self.put(k + "_requests", r.get("requests", 0))
            self.put(k + "_non2xx", r["non2xx"])
            self.put(k + "_cpu_pct", "%.0f" % (100.0 * cpu_s / self.a.seconds))
            self.put(k + "_events", d.get('haven_records_total{kind="event"}', 0))
            self.put(k + "_events_per_s", "%.0f" % (d.get('haven_records_total{kind="event"}', 0)
                                                     / self.a.seconds))
            self.put(k + "_dropped", d.get("haven_records_dropped_total", 0))
            self.put(k + "_spooled", d.get("haven_records_spooled_total", 0))
            self.put(k + "_dropped_all", ",".join(str(x[1].get("haven_records_dropped_total", 0))
                                                   for x in rows))
        self.stop(p)

    def run(self):
        a = self.a
        self.dns = subprocess.Popen([sys.executable, a.stubdns, "--record",
                                     "www.google.com 3600 A 127.0.0.1"],
                                    stdout=subprocess.PIPE, text=True)
        self.dns_port = int(self.dns.stdout.readline())
        try:
            self.setup()
            self.put("port_origin", self.ports["origin"])
            self.e2g("e2g_off", 0, None)
            self.e2g("e2g_haven", 2, a.e2g_list)
            self.e2g("e2g_shipped", 2, None)
            self.haven_pages("haven_off", "0")
            self.haven_pages("haven_on", "256K")
            self.events()
        finally:
            self.stop_all()
            self.dns.terminate()
            self.dns.wait()


def cmd_measure(a):
    Bench(a).run()


# --------------------------------------------------------------------------------------------
# Report

BEGIN, END = "<!-- bench/scan begin -->", "<!-- bench/scan end -->"


def load_kv(path):
    k = {}
    for line in Path(path).read_text().splitlines():
        if "=" in line:
            key, v = line.split("=", 1)
            k[key] = v
    return k


def med(k, key):
    vals = [float(k[x]) for x in k if re.fullmatch(r"%s_run\d+" % re.escape(key), x)]
    return statistics.median(vals) if vals else float("nan")


def runs(k, key, digits=1):
    return ", ".join(fnum(k[x], digits) for x in sorted(k) if re.fullmatch(r"%s_run\d+" %
                                                                       re.escape(key), x))


def scan_rate(k, name):
    """MB/s per core of the phrase scan alone: 1 / (CPU per MB on - CPU per MB off)."""
    off = name.split("_")[0] + "_off"
    d = float(k["%s_cpu_s_per_mb" % name]) - float(k["%s_cpu_s_per_mb" % off])
    return 1.0 / d if d > 0 else float("inf")


def cmd_report(a):
    k = load_kv(a.results)
    s = [BEGIN, "## Safeguarding monitor: phrase scanning and records (`bench/scan/run`)", ""]
    busy = float(k["loadavg"].split()[0]) > 1.5
    s.append("Run %s on %s CPUs (%s, %s); haven %s. Load average at the start: %s%s. "
             "Whole benchmark: %s s. Each figure is the median of %s runs."
             % (k["date"], k["nproc"], k["cpu_model"], k["kernel"], k["haven_commit"],
                k["loadavg"], " (the machine was busy: rerun on a quiet one)" if busy else "",
                fnum(k["total_s"]), k["runs"]))
    s.append("")
    s.append("**Corpus** (generated into `build/bench/scan/corpus`, not committed): %s HTML "
             "pages of %s to %s KB (log-uniform sizes, %s MB in all), each with a `<head>` "
             "(title, meta description, a `<style>` and a `<script>` block), a bar of 30 "
             "links named from the Majestic top sites, posts of paragraphs, a sidebar of 20 "
             "links, inline and trailing scripts. The prose is %s real sentences from this "
             "machine (%s sentences: man pages, `/usr/share/doc`, Python docstrings). %s of "
             "the paragraphs also carry a sentence holding a phrase of haven's libraries: %s "
             "such sentences on %s pages. Extracted text is %s%% of the HTML."
             % (k["corpus_pages"], k["corpus_min_kb"], k["corpus_max_kb"],
                fnum(int(k["corpus_bytes"]) / 1e6, 1), fnum(k["corpus_sentences"]),
                k["corpus_sources"], "%g%%" % (100 * float(k["corpus_share"])),
                k["corpus_phrases_put"], k["corpus_pages_with_phrase"],
                fnum(100.0 * int(k["text_bytes"]) / int(k["html_bytes"]), 0)))
    s.append("")
    s.append("### Phrase scanning, MB/s of page per core")
    s.append("")
    s.append("**haven** (`bench/scan/bench_scan.c`, one thread pinned to CPU %s): loads "
             "`monitor/` (%s phrases, languages %s) with `match_db_load_dir` and reads each "
             "page as the proxy does (`src/proxy/watch.c`): `extract_new` (HTML, identity, "
             "text cap 256 KiB), `match_stream_open`, then the page in 16 KB pieces "
             "(`extract_feed`, `extract_text`, `match_stream_feed`, `extract_consume`), "
             "`extract_finish` and `match_stream_close`. *Text only*: `match_text` over each "
             "page's text extracted beforehand. 1 MB = 10^6 bytes."
             % (k["cpu"], k["phrases"], k["languages"]))
    s.append("")
    s.append("| haven, in process | MB/s of HTML | MB/s of text | pages/s | runs (MB/s of HTML) |")
    s.append("|---|--:|--:|--:|---|")
    for key, label in (("page", "extract + scan (the proxy's work per page)"),
                       ("extract", "extract only"), ("text", "`match_text` over the text "
                                                             "alone")):
        s.append("| %s | **%s** | %s | %s | %s |"
                 % (label, fnum(med(k, key + "_html_mbps"), 1), fnum(med(k, key + "_text_mbps"),
                                                                    1),
                    fnum(med(k, key + "_pages_per_s")), runs(k, key + "_html_mbps")))
    s.append("")
    s.append("Hits per pass over the corpus: %s (on %s pages)."
             % (fnum(med(k, "page_hits_per_pass")), fnum(med(k, "page_pages_hit_per_pass"))))
    s.append("")
    on_haven = scan_rate(k, "e2g_haven")
    on_ship = scan_rate(k, "e2g_shipped")
    h_proxy = scan_rate(k, "haven_on")
    h_page = med(k, "page_html_mbps")
    s.append("**E2Guardian %s** (Debian) runs its phrase filter only inside the proxy, so it "
             "is measured as the proxy's CPU cost per MB of page with scanning on minus off: "
             "nginx %s serves the corpus on loopback (CPU %s); wrk (1 thread, %s connections, "
             "CPU %s; few, so that pages in flight at the end of a run weigh little) fetches the pages in turn through `e2guardian -N` pinned to CPU %s for "
             "%s s per run; the CPU time of the E2Guardian process comes from "
             "`/proc/PID/stat`, the MB from wrk's bytes read. Configuration: "
             "`/etc/e2guardian/*.conf` copied, with `%s`; scanning off is "
             "`weightedphrasemode = 0`, on is `weightedphrasemode = 2` (the shipped default) "
             "with `naughtynesslimit` so high that nothing is blocked (every page was checked "
             "to come through whole). Two phrase lists: haven's libraries converted by "
             "`scan.py e2glist` (%s phrases, each `< phrase ><weight>` with weight 1, 2, 5, 10 "
             "or 20 by severity; a trailing `*` becomes an open right edge; haven's context "
             "words, exclusions and double-letter matching have no E2Guardian form and are "
             "left out), and E2Guardian's own shipped lists (the default `weightedphraselist`, "
             "%s weighted phrases, with the shipped banned and exception phrase lists). "
             "haven serve is measured the same way (`workers 1`, `monitor-page-max 256K` on, "
             "`0` off) for the like-for-like proxy figure."
             % (k["e2g_version"], k["nginx_version"], k["load_cpu"], k["page_conns"],
                k["load_cpu"],
                k["cpu"], k["seconds"],
                re.sub(r"/\S*/build/bench/scan/", "build/bench/scan/",
                       k["e2g_haven_changes"]).replace("; ", "`, `"),
                k["e2g_haven_phrases"], k["e2g_shipped_phrases"]))
    s.append("")
    s.append("| proxy on one core | CPU ms per MB, scan off | scan on | **scan alone, MB/s "
             "per core** | proxy MB/s with scan on (its CPU use) |")
    s.append("|---|--:|--:|--:|--:|")
    for name, label, rate in (("e2g_haven", "E2Guardian, haven's phrases", on_haven),
                              ("e2g_shipped", "E2Guardian, its shipped lists", on_ship),
                              ("haven_on", "haven serve", h_proxy)):
        off = name.split("_")[0] + "_off"
        s.append("| %s | %s | %s | **%s** | %s (%s%%) |"
                 % (label, fnum(1000 * float(k[off + "_cpu_s_per_mb"]), 2),
                    fnum(1000 * float(k[name + "_cpu_s_per_mb"]), 2), fnum(rate, 1),
                    fnum(k[name + "_mbps"], 1), k[name + "_cpu_pct"]))
    s.append("")
    s.append("**haven ÷ E2Guardian, scanning MB/s per core** (goal: 300×): in-process haven "
             "(%s MB/s) against E2Guardian with haven's phrases: **%s×**; with its shipped "
             "lists: **%s×**. Proxy against proxy (haven serve's scan cost against "
             "E2Guardian's, haven's phrases): **%s×**. Goal %s."
             % (fnum(h_page, 1), fnum(h_page / on_haven, 1), fnum(h_page / on_ship, 1),
                fnum(h_proxy / on_haven, 1),
                "met" if h_page / on_haven >= 300 else "**not met**"))
    s.append("")
    s.append("Each run, CPU s per MB: " + "; ".join(
        "%s %s" % (n, k.get(n + "_cpu_s_per_mb_all", "?").replace(",", ", "))
        for n in ("e2g_off", "e2g_haven", "e2g_shipped", "haven_off", "haven_on")) + ".")
    s.append("")
    s.append("### Records into SQLite")
    s.append("")
    s.append("**In process** (`bench/scan/bench_events.c`): a recorder (`event/recorder.h`) "
             "on an empty data directory, %s access records submitted from 2 threads (70%% "
             "allowed requests that become hourly roll-ups, 25%% searches and 5%% blocks, "
             "an event row each), then `recorder_close`. *Flat out*: the threads submit as "
             "fast as they can; *paced*: %s records/s in all. *Events/s* counts the event "
             "rows from the first submit to the end of close (every one was checked in the "
             "database; paced, it can be no more than the 30%% of the offered records that are "
             "events: the dropped and spooled columns say whether the writer kept up); "
             "*submit* is the time of each `recorder_submit` call, the request "
             "path's cost (the clock read itself costs about %s ns)."
             % (fnum(k["events_n"]), fnum(k["events_rate"]), k.get("flat_clock_ns_p50_run1",
                                                                   "?")))
    s.append("")
    s.append("| case | records/s offered | events/s written | submit p50 | p99 | p99.9 | max "
             "| allowed dropped | safeguarding spooled |")
    s.append("|---|--:|--:|--:|--:|--:|--:|--:|--:|")
    for case, label in (("flat", "flat out"), ("paced", "paced %s/s" % fnum(k["events_rate"]))):
        s.append("| %s | %s | **%s** | %s ns | %s ns | %s ns | %s µs | %s | %s |"
                 % (label, fnum(med(k, case + "_offered_per_s")),
                    fnum(med(k, case + "_events_per_s")),
                    fnum(med(k, case + "_submit_ns_p50")), fnum(med(k, case + "_submit_ns_p99")),
                    fnum(med(k, case + "_submit_ns_p999")),
                    fnum(med(k, case + "_submit_ns_max") / 1000),
                    fnum(med(k, case + "_dropped")), fnum(med(k, case + "_spooled"))))
    s.append("")
    s.append("Each run, events/s: flat out %s; paced %s. Event rows found in the database "
             "against event records submitted, every run: %s."
             % (runs(k, "flat_events_per_s", 0), runs(k, "paced_events_per_s", 0),
                k.get("events_rows_check", "?")))
    s.append("")
    s.append("**The proxy under load**: haven serve (`workers 1`, CPU %s, access log on) with "
             "wrk (%s connections, CPU %s) sending `http://www.google.com:PORT/search?q=...` "
             "with a new query each time (a stub DNS server answers `www.google.com` with "
             "127.0.0.1; nginx answers `/search` with a small JSON body): every request is "
             "a search event. Beside it, the same URL without a query (a roll-up each). "
             "`haven_records_total` and `haven_records_dropped_total` are read from `/metrics` "
             "before and 1.5 s after each %s s run."
             % (k["cpu"], k["conns"], k["load_cpu"], k["seconds"]))
    s.append("")
    s.append("| requests | req/s | p50 | p99 | max | events written/s | allowed dropped | "
             "spooled | haven CPU |")
    s.append("|---|--:|--:|--:|--:|--:|--:|--:|--:|")
    for case, label in (("search", "searches (an event each)"),
                        ("plain", "no query (roll-ups)")):
        p = "proxy_%s" % case
        s.append("| %s | **%s** | %s ms | %s ms | %s | %s | %s | %s | %s%% |"
                 % (label, fnum(k[p + "_rps"]), k[p + "_p50_ms"], k[p + "_p99_ms"], k[p + "_max"],
                    fnum(k[p + "_events_per_s"]), k[p + "_dropped"], k[p + "_spooled"],
                    k[p + "_cpu_pct"]))
    s.append("")
    flat = med(k, "flat_events_per_s")
    s.append("**Goal** (100,000 events/s into SQLite, request path never blocked): the "
             "writer sustained %s events/s flat out in process (%s); `recorder_submit` never "
             "waits on the writer (p99 %s ns) but its slowest call took %s µs (the queue's "
             "mutex and, when it is full, the spool write). Paced at %s records/s, the writer "
             "%s: %s allowed records dropped and %s safeguarding records "
             "spooled per run (median). One proxy worker makes %s search "
             "events/s, so the proxy, not the store, is the limit there; %s."
             % (fnum(flat), "met" if flat >= 100000 else "**not met**",
                fnum(med(k, "flat_submit_ns_p99")), fnum(med(k, "flat_submit_ns_max") / 1000),
                fnum(k["events_rate"]),
                "kept up" if med(k, "paced_dropped") == 0 and med(k, "paced_spooled") == 0
                else "did not keep up", fnum(med(k, "paced_dropped")),
                fnum(med(k, "paced_spooled")), fnum(k["proxy_search_events_per_s"]),
                "no record was dropped or spooled" if k["proxy_search_dropped"] == "0"
                and k["proxy_search_spooled"] == "0" else "records were dropped or spooled"))
    s.append("")
    s.append("Reproduce: `bench/scan/run` (about %s minutes; `SCAN_RUNS`, `SCAN_SECONDS`, "
             "`SCAN_PAGES` and the others at the top of the script)." %
             fnum(float(k["total_s"]) / 60))
    s.append(END)
    section = "\n".join(s) + "\n"
    doc = Path(a.doc)
    text = doc.read_text()
    if BEGIN in text and END in text:
        text = text[:text.index(BEGIN)] + section.rstrip("\n") + text[text.index(END) +
                                                                      len(END):]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    doc.write_text(text)
    print(section)


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("corpus")
    c.add_argument("--libs", required=True)
    c.add_argument("--top", required=True)
    c.add_argument("--out", required=True)
    c.add_argument("--pages", type=int, default=200)
    c.add_argument("--seed", type=int, default=5)
    c.add_argument("--share", type=float, default=0.01)
    c.set_defaults(fn=cmd_corpus)
    e = sub.add_parser("e2glist")
    e.add_argument("--libs", required=True)
    e.add_argument("--out", required=True)
    e.set_defaults(fn=cmd_e2glist)
    n = sub.add_parser("e2gcount")
    n.add_argument("list")
    n.set_defaults(fn=lambda a: print(e2g_count(a.list)))
    m = sub.add_parser("measure")
    for arg in ("work", "haven", "stubdns", "corpus", "policy", "db", "e2g_list"):
        m.add_argument("--" + arg.replace("_", "-"), required=True)
    m.add_argument("--e2g-etc", default="/etc/e2guardian")
    m.add_argument("--cpu", type=int, default=1)
    m.add_argument("--load-cpu", type=int, default=0)
    m.add_argument("--runs", type=int, default=3)
    m.add_argument("--seconds", type=int, default=5)
    m.add_argument("--conns", type=int, default=16)
    m.add_argument("--page-conns", type=int, default=4)
    m.set_defaults(fn=cmd_measure)
    r = sub.add_parser("report")
    r.add_argument("results")
    r.add_argument("doc")
    r.set_defaults(fn=cmd_report)
    a = p.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
