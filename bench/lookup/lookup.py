#!/usr/bin/python3
"""Helpers of bench/lookup/run: request generation, the squidGuard configuration,
timed runs, the comparison of answers and the Markdown report.

    lookup.py gen DATA OUTDIR [--lines N] [--seed S]
    lookup.py sgconf DATA WORK POLICY INFO --extra DEST=FILE...   (writes WORK/sg and WORK/sg1)
    lookup.py measure --runs N --stdin FILE --stdout FILE --cpu C -- CMD...
    lookup.py compare REQUESTS KINDS HAVEN_OUT SG_OUT [--prefix P]
    lookup.py report RESULTS DOC

Every subcommand prints key=value lines (report writes DOC). Nothing here
downloads anything; all data comes from DATA (../shared/data or $HAVEN_DATA).
"""

import argparse
import csv
import lzma
import os
import random
import re
import statistics
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

# --------------------------------------------------------------------------------------------
# UT1 data


def read_lines(path):
    """The non-empty lines of a plain or .xz file."""
    path = Path(path)
    opener = lzma.open if path.suffix == ".xz" else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as f:
        return [line.strip() for line in f if line.strip()]


def ut1_black(ut1):
    """UT1 categories whose usage file says "black" (also "white black"), sorted."""
    black = []
    for d in sorted(p for p in Path(ut1).iterdir() if p.is_dir()):
        usage = d / "usage"
        if not usage.exists():
            continue
        words = []
        for line in usage.read_text(errors="replace").splitlines():
            if not line.startswith("#"):
                words += line.split()
        if "black" in words:
            black.append(d.name)
    return black


# --------------------------------------------------------------------------------------------
# Request generation

WORDS = ("news world sport weather business health science tech travel food music video "
         "games school maths history science art design home garden cars money jobs "
         "football recipes cheap best review guide how-to photos live today 2024 2025 "
         "london paris berlin new-york summer winter free download login account help "
         "about contact privacy terms shop cart product category search blog post").split()
SECTIONS = ("news articles blog products category shop en fr de media images video watch "
            "docs help support forum wiki user profile search api static assets").split()
SUBDOMAINS = ("m cdn static img images api video media mail login en fr de app apps www2 "
              "news blog shop secure assets s1 s2 edge").split()
TLDS = ("com com com com net org info de fr co.uk io xyz ru com.br nl it es pl jp "
        "online site top").split()
SYLLABLES = ("ka ro mi no ta le su pe ri do va lo ne zu bi ma to se ki ra de fo lu "
             "gan tor mel pix net web zen vox lab hub box").split()


def rand_hex(r, n):
    return "".join(r.choice("0123456789abcdef") for _ in range(n))


def slug(r, lo=2, hi=5):
    return "-".join(r.choice(WORDS) for _ in range(r.randint(lo, hi)))


def rand_path(r):
    """A path and query string of the shapes seen in proxy logs."""
    y, mo, n = r.randint(2015, 2026), r.randint(1, 12), r.randint(1, 999999)
    k = r.random()
    if k < 0.14:
        return "/"
    if k < 0.22:
        return r.choice(("/index.html", "/favicon.ico", "/robots.txt", "/sitemap.xml",
                         "/manifest.json", "/apple-touch-icon.png"))
    if k < 0.34:
        return "/%s/%d/%02d/%s.html" % (r.choice(SECTIONS), y, mo, slug(r))
    if k < 0.44:
        return "/%s/%s-%d" % (r.choice(SECTIONS), slug(r), n)
    if k < 0.52:
        q = "+".join(r.choice(WORDS) for _ in range(r.randint(1, 4)))
        return "/search?q=%s&hl=en&start=%d" % (q, 10 * r.randint(0, 5))
    if k < 0.62:
        return "/static/%s/js/%s.min.js?v=%d" % (rand_hex(r, 8), r.choice(WORDS), n)
    if k < 0.70:
        return "/assets/css/%s.css?ver=%d.%d.%d" % (r.choice(WORDS), r.randint(1, 9),
                                                    r.randint(0, 20), r.randint(0, 99))
    if k < 0.78:
        return "/wp-content/uploads/%d/%02d/%s-%dx%d.jpg" % (y, mo, slug(r, 1, 3),
                                                             r.choice((150, 300, 768, 1024)),
                                                             r.choice((150, 200, 576, 683)))
    if k < 0.85:
        return "/api/v%d/%s/%d?format=json&fields=id,name,updated&_=%d" % (
            r.randint(1, 3), r.choice(SECTIONS), n, 1700000000000 + n)
    if k < 0.90:
        return "/images/%s/%s.%s" % (rand_hex(r, 2), rand_hex(r, 32), r.choice(("png", "webp")))
    if k < 0.94:
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        return "/watch?v=%s&t=%ds" % ("".join(r.choice(alphabet) for _ in range(11)),
                                      r.randint(0, 600))
    if k < 0.97:
        return "/p/%d?utm_source=%s&utm_medium=%s&utm_campaign=%s" % (
            n, r.choice(("newsletter", "twitter", "facebook", "google")),
            r.choice(("email", "social", "cpc")), slug(r, 1, 3))
    return "/%s/%s/%s" % (r.choice(("en", "fr", "de", "es", "en-gb")), r.choice(SECTIONS),
                          slug(r))


def rand_name(r):
    return "".join(r.choice(SYLLABLES) for _ in range(r.randint(2, 4))) + (
        str(r.randint(1, 99)) if r.random() < 0.15 else "")


IPV4 = re.compile(r"^\d+\.\d+\.\d+\.\d+$")


def prefixed(r, host):
    """host as a browser would ask for it: bare, with www., or with another subdomain."""
    if IPV4.match(host):
        return host
    k = r.random()
    if k < 0.35:
        return host if host.startswith("www.") else "www." + host
    if k < 0.70:
        return (r.choice(SUBDOMAINS) if r.random() < 0.7 else rand_name(r)) + "." + host
    return host


def cmd_gen(a):
    data = Path(a.data)
    r = random.Random(a.seed)
    out = Path(a.outdir)
    out.mkdir(parents=True, exist_ok=True)

    top = []
    with lzma.open(data / "top-sites" / "majestic_million-top15000.csv.xz", "rt") as f:
        for row in csv.DictReader(f):
            d = row["Domain"].strip().lower()
            if d and not d.startswith("."):
                top.append(d)
    # Popular sites are asked for more often (rank^-0.5, a mild head).
    top_w = [1.0 / (i + 1) ** 0.5 for i in range(len(top))]

    black = ut1_black(data / "ut1")
    ut1_domains, ut1_urls = [], []
    for c in black:
        d = data / "ut1" / c
        if (d / "domains.xz").exists():
            ut1_domains += [x.lstrip(".") for x in read_lines(d / "domains.xz")]
        if (d / "urls.xz").exists():
            ut1_urls += read_lines(d / "urls.xz")
    adult = [x.lstrip(".") for x in read_lines(data / "adult-top1m" / "domains.xz")]

    counts = {"top": 0, "hit": 0, "urlhit": 0, "miss": 0}
    # The top-site draws are made in blocks (random.choices with weights is slow one by one).
    top_pool, top_i = [], 0
    with open(out / "requests.txt", "w") as req, open(out / "hosts.txt", "w") as hosts, \
            open(out / "kinds.txt", "w") as kinds:
        for _ in range(a.lines):
            k = r.random()
            path = None
            if k < 0.70:
                if top_i == len(top_pool):
                    top_pool, top_i = r.choices(top, weights=top_w, k=65536), 0
                d = top_pool[top_i]
                top_i += 1
                j = r.random()
                if j < 0.45 and d.count(".") == 1:
                    host = "www." + d
                elif j < 0.65:
                    host = r.choice(SUBDOMAINS) + "." + d
                else:
                    host = d
                kind = "top"
            elif k < 0.90:
                j = r.random()
                if j < 0.05:
                    # A URL-list entry, as listed or with more path below it.
                    e = r.choice(ut1_urls)
                    host, _, rest = e.partition("/")
                    path = "/" + rest
                    if r.random() < 0.3 and "?" not in path:
                        path = path.rstrip("/") + "/" + slug(r, 1, 2) + ".html"
                    kind = "urlhit"
                else:
                    host = prefixed(r, r.choice(adult) if j < 0.45 else r.choice(ut1_domains))
                    kind = "hit"
            else:
                host = rand_name(r) + "." + r.choice(TLDS)
                if r.random() < 0.3:
                    host = "www." + host
                kind = "miss"
            if path is None:
                path = rand_path(r)
            counts[kind] += 1
            req.write("http://%s%s 10.0.%d.%d/- - GET\n" % (host, path, r.randint(0, 3),
                                                          r.randint(1, 254)))
            hosts.write(host + "\n")
            kinds.write(kind + "\n")
    print("lines=%d" % a.lines)
    for k, v in counts.items():
        print("gen_%s=%d" % (k, v))
    print("black_categories=%d" % len(black))


# --------------------------------------------------------------------------------------------
# squidGuard configuration


def policy_blocked(policy):
    """Categories named on the `block` lines of the policy (no schedules in this one)."""
    cats = set()
    for line in Path(policy).read_text().splitlines():
        t = line.split("#", 1)[0].split()
        if t and t[0] == "block":
            if "during" in t or "outside" in t or (len(t) > 1 and t[1] == "site"):
                sys.exit("lookup.py: %s: only plain `block CATEGORY...` lines are supported"
                         % policy)
            cats.update(t[1:])
    return cats


def db_lists(info):
    """(list name, category) of each list in `haven lists info` output."""
    out = []
    for line in Path(info).read_text().splitlines():
        t = line.split()
        if line.startswith("  ") and len(t) == 3 and t[2].isdigit():
            out.append((t[0], t[1]))
    return out


def write_sg(work, dests, comment):
    """A squidGuard configuration in work/: dests is [(name, domains, urls)]."""
    dbhome, logdir = work / "db", work / "log"
    logdir.mkdir(parents=True, exist_ok=True)
    conf = ["# Written by bench/lookup/lookup.py sgconf: %s." % comment,
            "dbhome %s" % dbhome.resolve(), "logdir %s" % logdir.resolve(), ""]
    for name, dl, ul in dests:
        (dbhome / name).mkdir(parents=True, exist_ok=True)
        conf.append("dest %s {" % name)
        if dl:
            (dbhome / name / "domains").write_text("\n".join(dl) + "\n")
            conf.append("    domainlist %s/domains" % name)
        if ul:
            (dbhome / name / "urls").write_text("\n".join(ul) + "\n")
            conf.append("    urllist %s/urls" % name)
        conf.append("}")
    conf += ["", "acl {", "    default {",
             "        pass %s all" % " ".join("!" + d[0] for d in dests),
             "        redirect http://blocked.invalid/", "    }", "}", ""]
    (work / "squidGuard.conf").write_text("\n".join(conf))


def cmd_sgconf(a):
    """Two squidGuard configurations from the UT1 black lists: WORK/sg (one dest per
    UT1 category, the usual way) and WORK/sg1 (every list merged into one dest)."""
    data, work = Path(a.data), Path(a.work)
    blocked = policy_blocked(a.policy)
    lists = db_lists(a.info)
    if not lists:
        sys.exit("lookup.py: no lists in %s" % a.info)
    extra = dict(e.split("=", 1) for e in a.extra)  # dest -> file

    # What haven blocks, in UT1 names; it must be every UT1 black list and nothing else.
    haven_ut1 = sorted(n[4:] for n, c in lists if n.startswith("ut1/") and c in blocked)
    black = ut1_black(data / "ut1")
    if haven_ut1 != black:
        sys.exit("lookup.py: the policy does not block exactly the UT1 black lists:\n"
                 "  blocked but not black: %s\n  black but not blocked: %s"
                 % (sorted(set(haven_ut1) - set(black)), sorted(set(black) - set(haven_ut1))))
    cat_of = {n[4:]: c for n, c in lists if n.startswith("ut1/")}
    for n, c in lists:
        if n.startswith("ut1/"):
            continue
        dest = next((d for d, f in extra.items() if Path(f).name in n), None)
        if c not in blocked or dest is None or cat_of.get(dest) != c:
            sys.exit("lookup.py: list %s (%s) has no matching squidGuard dest (--extra)" % (n, c))

    dests = []
    for c in black:
        src = data / "ut1" / c
        dl = read_lines(src / "domains.xz") if (src / "domains.xz").exists() else []
        if c in extra:
            dl += read_lines(extra[c])
        ul = read_lines(src / "urls.xz") if (src / "urls.xz").exists() else []
        dests.append((c, dl, ul))
    write_sg(work / "sg", dests, "one dest per UT1 black list")
    # "all" is a squidGuard keyword, so the merged dest has another name.
    write_sg(work / "sg1", [("blacklists", [d for x in dests for d in x[1]],
                             [u for x in dests for u in x[2]])],
             "every UT1 black list in one dest")
    print("sg_dests=%d" % len(dests))
    print("sg_domains=%d" % sum(len(x[1]) for x in dests))
    print("sg_urls=%d" % sum(len(x[2]) for x in dests))
    print("blocked_categories=%d" % len(blocked))


# --------------------------------------------------------------------------------------------
# Timed runs


def cmd_measure(a):
    """Run CMD a.runs times, stdin from a file, stdout to a file; median wall time and peak RSS.

    Peak RSS is the child's ru_maxrss from wait4(), the counter `/usr/bin/time -f %M` prints.
    """
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd
    if a.cpu is not None:
        cmd = ["taskset", "-c", str(a.cpu)] + cmd
        # This process (the "load generator": it only waits) stays off that core.
        others = set(range(os.cpu_count() or 1)) - {a.cpu}
        if others:
            os.sched_setaffinity(0, others)
    walls, rss = [], []
    for _ in range(a.runs):
        with open(a.stdin, "rb") as fin, open(a.stdout, "wb") as fout:
            t0 = time.perf_counter()
            p = subprocess.Popen(cmd, stdin=fin, stdout=fout, stderr=subprocess.PIPE)
            err = p.stderr.read()
            _, status, ru = os.wait4(p.pid, 0)
            wall = time.perf_counter() - t0
            p.returncode = os.waitstatus_to_exitcode(status)
        if p.returncode != 0:
            sys.stderr.write(err.decode(errors="replace"))
            sys.exit("lookup.py: %s exited with %d" % (" ".join(cmd), p.returncode))
        walls.append(wall)
        rss.append(ru.ru_maxrss)
    print("wall_s=%.4f" % statistics.median(walls))
    print("wall_all=%s" % ",".join("%.4f" % w for w in walls))
    print("rss_kb=%d" % statistics.median(rss))


# --------------------------------------------------------------------------------------------
# Comparing answers


def haven_hit(answer):
    """The entry a haven block answer names ("example.com", "example.com/dir"), or None."""
    m = re.search(r"[?&]reason=([^&\"]*)", answer)
    if not m:
        return None
    reason = urllib.parse.unquote(m.group(1))
    if "could not be read" in reason:
        return ""
    return reason.split(" is in the category", 1)[0] if " is in the category" in reason else None


def why_more(url, answer):
    """Why haven blocked a line the other tool passed, from the entry haven names."""
    hit = haven_hit(answer)
    if hit is None:
        return "other"
    if hit == "":
        return "unreadable"
    if "/" in hit:
        return "url_entry"
    host = url.split("/")[2] if url.count("/") >= 2 else url
    if host == hit:
        return "exact_host"
    return "below_entry"


def cmd_compare(a):
    """Compare the answers of two helpers (a: haven or squidGuard, b: squidGuard)."""
    with open(a.requests) as f:
        reqs = [x.split(" ", 1)[0] for x in f.read().splitlines()]
    n = len(reqs)
    with open(a.kinds) as f:
        kinds = f.read().splitlines()[:n]
    with open(a.a) as f:
        aa = f.read().splitlines()
    with open(a.b) as f:
        bb = [x.startswith("OK") for x in f.read().splitlines()]
    for name, ans in ((a.a, aa), (a.b, bb)):
        if len(ans) != n:
            sys.exit("lookup.py: %s holds %d answers for %d lines" % (name, len(ans), n))
    ab = [x.startswith("OK") for x in aa]
    p = a.prefix
    print("%slines=%d" % (p, n))
    print("%sa_blocked=%d\n%sb_blocked=%d" % (p, sum(ab), p, sum(bb)))
    a_only = [i for i in range(n) if ab[i] and not bb[i]]
    b_only = [i for i in range(n) if bb[i] and not ab[i]]
    print("%sa_only=%d\n%sb_only=%d" % (p, len(a_only), p, len(b_only)))
    for k in ("top", "hit", "urlhit", "miss"):
        idx = [i for i in range(n) if kinds[i] == k]
        print("%s%s_lines=%d\n%s%s_a_blocked=%d\n%s%s_b_blocked=%d" % (
            p, k, len(idx), p, k, sum(ab[i] for i in idx), p, k, sum(bb[i] for i in idx)))
    why = {}
    for i in a_only:
        w = why_more(reqs[i], aa[i])
        why[w] = why.get(w, 0) + 1
    for w in ("below_entry", "exact_host", "url_entry", "unreadable", "other"):
        print("%sa_only_%s=%d" % (p, w, why.get(w, 0)))
    r = random.Random(1)
    for name, idx in (("a_only", a_only), ("b_only", b_only)):
        for i in sorted(r.sample(idx, min(len(idx), a.examples))):
            hit = haven_hit(aa[i]) if name == "a_only" else None
            print("example_%s%s=%s%s" % (p, name, reqs[i],
                                         " (haven: listed as %s)" % hit if hit else ""))


# --------------------------------------------------------------------------------------------
# Report


def load_kv(path):
    kv = {}
    for line in Path(path).read_text().splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            if k.startswith("example_"):
                kv.setdefault(k, []).append(v)
            else:
                kv[k] = v
    return kv


BEGIN, END = "<!-- bench/lookup begin -->", "<!-- bench/lookup end -->"
HEADER = """# Benchmarks

Measured by `make bench` (which runs each `bench/*/run`); every section below is regenerated
by its own script between its `<!-- ... begin -->` and `<!-- ... end -->` markers, so the
sections may come from different days. Method (see the project's benchmark notes): haven and
its peer on the same machine, the same data and the same input in one run; the system under
test pinned to one core with `taskset`; three runs per figure, the median reported; ratios
matter more than absolute figures, because the machines are shared and noisy. No test
asserts a time.

Data: `../shared/data` (or `$HAVEN_DATA`): UT1 blacklists (CC BY-SA 4.0, Fabrice Prigent,
Université Toulouse Capitole), adult-top1m (derived from UT1) and the Majestic Million top
15,000 (CC BY 3.0, Majestic-12 Ltd).
"""


def fnum(x, digits=0):
    """x with thousands separators; digits < 0 rounds to tens, hundreds..."""
    if digits < 0:
        return "{:,.0f}".format(round(float(x), digits))
    return "{:,.{}f}".format(float(x), digits)


def cmd_report(a):
    k = load_kv(a.results)
    f = lambda key: float(k[key])
    i = lambda key: fnum(k[key])
    ok = lambda c: "**met**" if c else "**missed**"
    lines, sg_lines = f("lines"), f("sg_lines")
    rate = {"haven": lines / f("haven_wall_s"), "havenp": sg_lines / f("havenp_wall_s"),
            "sg": sg_lines / f("sg_wall_s"), "sg1": lines / f("sg1_wall_s")}
    ratio_sg = rate["havenp"] / rate["sg"]
    ratio_sg1 = rate["haven"] / rate["sg1"]
    mib = lambda b: fnum(float(b) / 1048576, 1)
    pct = lambda n, d: fnum(100 * float(n) / float(d), 2)
    sp = lambda x: x.replace(",", ", ")

    s = [BEGIN, "## Category lookup: haven squid-helper vs squidGuard (`bench/lookup/run`)", ""]
    s.append("Run %s on %s CPUs (%s, %s); haven %s. Each helper pinned to CPU %s with "
             "`taskset`, %d runs per figure, median. Whole benchmark: %s s."
             % (k["date"], k["nproc"], k["cpu_model"], k["kernel"], k["haven_commit"], k["cpu"],
                int(k["runs"]), fnum(k["total_s"])))
    s.append("")
    s.append("**Lists.** Both tools get the same lists: the %d UT1 categories whose `usage` file "
             "says `black` (%s domain and %s URL lines; squidGuard's `expressions` files are "
             "left out, haven has no regular expressions) and adult-top1m (%s domains) in the "
             "adult category. haven compiles them into %s distinct entries (%s hosts, %s URLs, "
             "%s addresses; %s lines rejected); its policy (`bench/lookup/policy.conf`) blocks "
             "the %s haven categories those lists map to. squidGuard is run in two "
             "configurations: the usual one, one `dest` per UT1 category (%d dests, "
             "`pass !adult !agressif ... all`), and all lists merged into one `dest`, the "
             "fastest layout for squidGuard."
             % (int(k["sg_dests"]), i("sg_domains"), i("sg_urls"), i("adult_top1m"),
                i("entries"), i("hosts"), i("urls"), i("ips"), i("haven_rejected_lines"),
                k["blocked_categories"], int(k["sg_dests"])))
    s.append("")
    s.append("**Requests.** %s lines `http://host/path?query 10.0.x.y/- - GET`, fixed seed: "
             "%s%% Majestic top-15,000 sites (rank-weighted; bare, `www.` or another "
             "subdomain; paths and query strings of the usual shapes), %s%% list entries (40%% "
             "adult-top1m, 60%% UT1 black domains, bare, `www.` or a subdomain; 5%% of them UT1 "
             "URL entries), %s%% random names in no list. squidGuard with one dest per category "
             "answers only %s lines/s, so it gets the first %s lines of the same file "
             "(`LOOKUP_SG_LINES`), and haven is timed on those too. Throughput = lines / wall "
             "time of the whole run, start-up included, reading the file on standard input "
             "and writing the answers to a file. Load time = wall time of a run with a "
             "one-line input (start, open the lists, answer, exit). Peak RSS = `ru_maxrss` "
             "of the helper (what `/usr/bin/time -f %%M` prints)."
             % (i("lines"), fnum(100 * f("gen_top") / lines, 1),
                fnum(100 * (f("gen_hit") + f("gen_urlhit")) / lines, 1),
                fnum(100 * f("gen_miss") / lines, 1), fnum(rate["sg"], -2), i("sg_lines")))
    s.append("")
    s.append("| | haven squid-helper | squidGuard 1.6, %d dests | squidGuard 1.6, 1 dest |"
             % int(k["sg_dests"]))
    s.append("|---|--:|--:|--:|")
    s.append("| build the database | %s s | %s s | %s s |" % (
        fnum(k["haven_build_s"], 2), fnum(k["sg_build_s"], 2), fnum(k["sg1_build_s"], 2)))
    s.append("| database size | %s MiB | %s MiB | %s MiB |" % (
        mib(k["db_bytes"]), mib(k["sg_db_bytes"]), mib(k["sg1_db_bytes"])))
    s.append("| load time (first answer) | %s ms | %s ms | %s ms |" % (
        fnum(1e3 * f("haven_load_wall_s"), 1), fnum(1e3 * f("sg_load_wall_s"), 1),
        fnum(1e3 * f("sg1_load_wall_s"), 1)))
    s.append("| peak RSS | %s MiB | %s MiB | %s MiB |" % (
        mib(1024 * f("haven_rss_kb")), mib(1024 * f("sg_rss_kb")), mib(1024 * f("sg1_rss_kb"))))
    s.append("| wall time | %s s (%s lines); %s s (%s) | %s s (%s lines) | %s s (%s lines) |" % (
        fnum(k["haven_wall_s"], 3), i("lines"), fnum(k["havenp_wall_s"], 3), i("sg_lines"),
        fnum(k["sg_wall_s"], 2), i("sg_lines"), fnum(k["sg1_wall_s"], 2), i("lines")))
    s.append("| **lines/s, one core** | **%s**; %s on %s lines | **%s** | **%s** |" % (
        fnum(rate["haven"]), fnum(rate["havenp"]), i("sg_lines"), fnum(rate["sg"]),
        fnum(rate["sg1"])))
    s.append("| **haven ÷ squidGuard** (same lines) | | **%.1f×** | **%.1f×** |"
             % (ratio_sg, ratio_sg1))
    s.append("| blocked, same lines: haven / squidGuard | | %s / %s (%s%% / %s%%) "
             "| %s / %s (%s%% / %s%%) |" % (
                 i("cmp_sg_a_blocked"), i("cmp_sg_b_blocked"),
                 pct(k["cmp_sg_a_blocked"], sg_lines), pct(k["cmp_sg_b_blocked"], sg_lines),
                 i("cmp_sg1_a_blocked"), i("cmp_sg1_b_blocked"),
                 pct(k["cmp_sg1_a_blocked"], lines), pct(k["cmp_sg1_b_blocked"], lines)))
    s.append("")
    s.append("Wall times of the runs (s): haven %s and %s; squidGuard %d dests %s; "
             "1 dest %s." % (sp(k["haven_wall_all"]), sp(k["havenp_wall_all"]),
                             int(k["sg_dests"]), sp(k["sg_wall_all"]), sp(k["sg1_wall_all"])))
    s.append("")
    s.append("**Blocked lines by kind of request** (haven / squidGuard):")
    s.append("")
    s.append("| kind | %s dests: lines | blocked | 1 dest: lines | blocked |"
             % int(k["sg_dests"]))
    s.append("|---|--:|--:|--:|--:|")
    for kind, title in (("top", "top sites"), ("hit", "list domains"),
                        ("urlhit", "list URLs"), ("miss", "random names")):
        s.append("| %s | %s | %s / %s | %s | %s / %s |" % (
            title, i("cmp_sg_%s_lines" % kind), i("cmp_sg_%s_a_blocked" % kind),
            i("cmp_sg_%s_b_blocked" % kind), i("cmp_sg1_%s_lines" % kind),
            i("cmp_sg1_%s_a_blocked" % kind), i("cmp_sg1_%s_b_blocked" % kind)))
    s.append("")
    s.append("**Why the counts differ.** squidGuard blocked %s lines that haven passed "
             "(%d dests; %s with 1 dest). haven blocked %s lines that squidGuard with %d "
             "dests passed: %s are names below a listed domain (`www.` + it included), %s "
             "match a URL entry, %s are a listed name itself, %s could not be read (haven "
             "fails closed); "
             "against the merged dest (%s lines) the split is %s / %s / %s / %s."
             % (i("cmp_sg_b_only"), int(k["sg_dests"]), i("cmp_sg1_b_only"),
                i("cmp_sg_a_only"), int(k["sg_dests"]), i("cmp_sg_a_only_below_entry"),
                i("cmp_sg_a_only_url_entry"), i("cmp_sg_a_only_exact_host"),
                i("cmp_sg_a_only_unreadable"), i("cmp_sg1_a_only"),
                i("cmp_sg1_a_only_below_entry"), i("cmp_sg1_a_only_url_entry"),
                i("cmp_sg1_a_only_exact_host"), i("cmp_sg1_a_only_unreadable")))
    s.append("")
    s.append("- *Names below a listed domain.* squidGuard's lookup (`defined()` in `sgDb.c`) "
             "does one B-tree range search (`DB_SET_RANGE`) for the reversed name and looks "
             "only at the key found and the one before it, and it takes the one before only "
             "if it differs from the found key in its last key-length bytes. When a list "
             "holds a domain and a name below it, as UT1 and adult-top1m often do "
             "(`redtube.com` and `www.redtube.com`), a request for another name below the "
             "domain lands next to `www.redtube.com`, whose tail is `.redtube.com`, and "
             "passes. In this run, for `redtube.com`, `www.redtube.com`, `app.redtube.com`: "
             "haven %s; squidGuard %d dests %s; 1 dest %s. Merging the lists puts more such "
             "pairs into one tree, so the merged dest blocks fewer lines (top sites most: "
             "`youtube.com` and subdomains of it are listed in different categories). haven "
             "matches every label-boundary suffix of the name, as `docs/lists.md` specifies."
             % (k["probe_haven"].replace(",", ", "), int(k["sg_dests"]),
                k["probe_sg"].replace(",", ", "), k["probe_sg1"].replace(",", ", ")))
    s.append("- *URL entries.* The same one-neighbour search applies to squidGuard's URL "
             "lists. squidGuard also never matches an entry with `//` in its path (UT1 malware "
             "lists `45.90.163.37//i486`; haven normalises entry and request alike to "
             "`/i486`), and it applies a URL entry only to its host as listed, less a leading "
             "`www.` or `www2.`, where haven applies it to names below the host too. The other "
             "way round, squidGuard matches URL entries case-insensitively and without a "
             "path-segment boundary (`example.com/bad` also blocks `/badge` and `/BAD`), "
             "which makes it block lines haven passes.")
    ex = k.get("example_cmp_sg_a_only", []) + k.get("example_cmp_sg_b_only", [])
    if ex:
        s.append("")
        s.append("Sample of the lines haven blocked and squidGuard (%d dests) passed%s:"
                 % (int(k["sg_dests"]),
                    ", then the other way round" if k.get("example_cmp_sg_b_only") else ""))
        s.append("")
        s.append("```")
        s += k.get("example_cmp_sg_a_only", [])
        if k.get("example_cmp_sg_b_only"):
            s.append("--")
            s += k["example_cmp_sg_b_only"]
        s.append("```")
    s.append("")
    s.append("**In process** (`bench_catdb`, one core): the category database with the %s "
             "hosts and URLs of the request file, in file order, repeated until at least "
             "3,000,000 lookups and 1 s; hosts and URLs are normalised before the clock starts "
             "(except in the last row)." % i("host_inputs"))
    s.append("")
    s.append("| figure | measured | target | |")
    s.append("|---|--:|--:|---|")
    s.append("| `catdb_open` (mmap, CRC-32 of the file, slot walk), median of 5 | %s ms "
             "(slowest %s) | < 100 ms | %s |" % (fnum(k["open_ms"], 1), fnum(k["open_ms_max"], 1),
                                                 ok(f("open_ms") < 100)))
    s.append("| file bytes per distinct entry (%s bytes / %s) | %s | ≤ 32 | %s |" % (
        i("db_bytes"), i("entries"), fnum(k["bytes_per_entry"], 1),
        ok(f("bytes_per_entry") <= 32)))
    s.append("| `catdb_lookup_host` | %s /s (%s ns) | ≥ 3,000,000 /s | %s |" % (
        i("host_lookups_per_s"), fnum(k["host_ns_per_lookup"]),
        ok(f("host_lookups_per_s") >= 3e6)))
    s.append("| `catdb_lookup_url` (canonical URL) | %s /s (%s ns) | | |" % (
        i("url_lookups_per_s"), fnum(k["url_ns_per_lookup"])))
    s.append("| `url_normalize` + `catdb_lookup_url` | %s /s (%s ns) | | |" % (
        i("normalize_url_lookups_per_s"), fnum(k["normalize_url_ns_per_lookup"])))
    s.append("| squid-helper vs squidGuard, %d dests | %.1f× | ≥ 10× | %s |" % (
        int(k["sg_dests"]), ratio_sg, ok(ratio_sg >= 10)))
    s.append("| squid-helper vs squidGuard, 1 dest | %.1f× | ≥ 10× | %s |" % (
        ratio_sg1, ok(ratio_sg1 >= 10)))
    s.append("")
    s.append("%s%% of the host lookups and %s%% of the URL lookups match an entry."
             % (fnum(100 * f("host_hit_fraction"), 1), fnum(100 * f("url_hit_fraction"), 1)))
    s.append(END)
    section = "\n".join(s) + "\n"

    doc = Path(a.doc)
    text = doc.read_text() if doc.exists() else HEADER
    if BEGIN in text and END in text:
        pre, rest = text.split(BEGIN, 1)
        post = rest.split(END, 1)[1].lstrip("\n")
        text = pre + section + ("\n" + post if post else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(text)
    print("ratio_sg=%.2f\nratio_sg1=%.2f" % (ratio_sg, ratio_sg1))


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("gen")
    p.add_argument("data")
    p.add_argument("outdir")
    p.add_argument("--lines", type=int, default=1000000)
    p.add_argument("--seed", type=int, default=20261128)
    p.set_defaults(fn=cmd_gen)
    p = sub.add_parser("sgconf")
    p.add_argument("data")
    p.add_argument("work")
    p.add_argument("policy")
    p.add_argument("info")
    p.add_argument("--extra", action="append", default=[])
    p.set_defaults(fn=cmd_sgconf)
    p = sub.add_parser("measure")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--stdin", required=True)
    p.add_argument("--stdout", required=True)
    p.add_argument("--cpu", type=int)
    p.add_argument("cmd", nargs=argparse.REMAINDER)
    p.set_defaults(fn=cmd_measure)
    p = sub.add_parser("compare")
    p.add_argument("requests")
    p.add_argument("kinds")
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--prefix", default="")
    p.add_argument("--examples", type=int, default=5)
    p.set_defaults(fn=cmd_compare)
    p = sub.add_parser("report")
    p.add_argument("results")
    p.add_argument("doc")
    p.set_defaults(fn=cmd_report)
    a = ap.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
