"""The tables and the `scale:` line of benches/scale.py, from its per-setup results."""
import json
import statistics

GIB = 1 << 30
MIB = 1 << 20


def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def gib(r, size):
    """GiB the setup's successful uploads moved (0 if none succeeded)."""
    return r["ok"] * size / GIB


def per_gib(cpu, r, size):
    return cpu / gib(r, size) if r["ok"] else None


def summarize(runs, setup, names, size):
    rs = [r for r in runs if r["setup"] == setup]
    out = {"mbs": med([r["mbs"] for r in rs]), "instances": {}}
    for k in ("haproxy", "garage", "stunnel", "client"):
        out[f"{k}_cpu_per_gib"] = med([per_gib(r[f"{k}_cpu"], r, size) for r in rs if f"{k}_cpu" in r])
    for name in names:
        ins = [r["instances"][name] for r in rs]
        out["instances"][name] = {
            "uploads": med([i["uploads"] for i in ins]),
            "cpu_per_gib": med([i["cpu_per_gib"] for i in ins]),
            "peak_rss_mib": max(i["peak_rss_mib"] for i in ins),
        }
    out["servers_cpu_per_gib"] = med([per_gib(servers_cpu(r), r, size) for r in rs])
    out["machine_cpu_per_gib"] = med([per_gib(machine_cpu(r), r, size) for r in rs])
    return out


def servers_cpu(r):
    return sum(i["cpu"] for i in r["instances"].values())


def machine_cpu(r):
    """Everything the uploads made this machine do: instances, HAProxy, Garage, stunnel, clients."""
    return (servers_cpu(r) + r["client_cpu"]
            + sum(r.get(f"{k}_cpu", 0.0) for k in ("haproxy", "garage", "stunnel")))


def fmt(v, f="{:.2f}"):
    return "-" if v is None else f.format(v)


def ratio(x, y):
    return "-" if x is None or not y else f"x{x / y:.2f}"


def table(rows):
    cols = []
    for row in rows:
        cols += [k for k in row if k not in cols]
    print("| " + " | ".join(cols) + " |")
    print("|" + "|".join("---" for _ in cols) + "|")
    for row in rows:
        print("| " + " | ".join(str(row.get(k, "")) for k in cols) + " |")


def report(a, runs, header, names, machine):
    """Prints `header`, a table per setup run and one per instance, the CPU ceiling, and the `scale:`
    line; writes --json. `names`: the instances, the first being the direct setup's target."""
    size = a.size
    direct, lb = summarize(runs, "direct", names, size), summarize(runs, "haproxy", names, size)
    print("\n".join(header))
    rows = []
    for r in runs:
        rows.append({"run": r["run"], "setup": r["setup"], "MB/s": f"{r['mbs']:.1f}", "wall s": f"{r['wall']:.1f}",
                     "ok": f"{r['ok']}/{a.count}",
                     "servers CPU-s/GiB": fmt(per_gib(servers_cpu(r), r, size)),
                     "HAProxy CPU-s/GiB": fmt(per_gib(r["haproxy_cpu"], r, size), "{:.3f}"),
                     "Garage CPU-s/GiB": fmt(per_gib(r["garage_cpu"], r, size)),
                     "stunnel CPU-s/GiB": fmt(per_gib(r["stunnel_cpu"], r, size) if "stunnel_cpu" in r else None),
                     "client CPU-s/GiB": fmt(per_gib(r["client_cpu"], r, size)),
                     "machine CPU-s/GiB": fmt(per_gib(machine_cpu(r), r, size)),
                     "verify": r["verify"]})
    table(rows)
    print()
    rows = []
    for r in runs:
        for name, i in r["instances"].items():
            rows.append({"run": r["run"], "setup": r["setup"], "instance": name, "uploads": i["uploads"],
                         "HAProxy sessions": i["haproxy_sessions"],
                         "GiB": f"{i['plaintext_bytes'] / GIB:.2f}", "CPU-s": f"{i['cpu']:.1f}",
                         "CPU-s/GiB": fmt(i["cpu_per_gib"]),
                         f"peak RSS MiB ({i['peak_rss_source']})": f"{i['peak_rss_mib']:.0f}",
                         "sampled RSS MiB": f"{i['sampled_rss_mib']:.0f}",
                         "client address seen": ",".join(i["auth_sources"]) or "-"})
    table(rows)
    cores = machine["cores"]
    ceilings = [f"{name} {fmt(s['machine_cpu_per_gib'])} CPU-s/GiB -> {fmt(cores * GIB / 1e6 / s['machine_cpu_per_gib'], '{:.1f}')} MB/s"
                for name, s in (("direct", direct), ("haproxy", lb)) if s["machine_cpu_per_gib"]]
    # Everything runs on this machine's cores, so the work per GiB caps the throughput.
    print(f"# machine CPU per GiB and the MB/s it allows with all {cores} cores busy: " + "; ".join(ceilings))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"args": vars(a), **machine, "runs": runs, "summary": {"direct": direct, "haproxy": lb}}, f, indent=1, default=str)

    base = direct["instances"][names[0]]
    parts = [f"haproxy+2 {fmt(lb['mbs'], '{:.1f}')} MB/s vs direct {fmt(direct['mbs'], '{:.1f}')} MB/s "
             f"({ratio(lb['mbs'], direct['mbs'])})"]
    parts.append("CPU-s/GiB " + ", ".join(
        f"{n} {fmt(lb['instances'][n]['cpu_per_gib'])} ({ratio(lb['instances'][n]['cpu_per_gib'], base['cpu_per_gib'])})"
        for n in names) + f" vs direct {fmt(base['cpu_per_gib'])}")
    parts.append("peak RSS " + ", ".join(
        f"{n} {lb['instances'][n]['peak_rss_mib']:.0f} MiB "
        f"({ratio(lb['instances'][n]['peak_rss_mib'], base['peak_rss_mib'])})" for n in names)
        + f" vs direct {base['peak_rss_mib']:.0f} MiB")
    parts.append(f"both instances {fmt(lb['servers_cpu_per_gib'])} CPU-s/GiB vs direct "
                 f"{fmt(direct['servers_cpu_per_gib'])} ({ratio(lb['servers_cpu_per_gib'], direct['servers_cpu_per_gib'])})")
    parts.append(f"HAProxy {fmt(lb['haproxy_cpu_per_gib'], '{:.3f}')} CPU-s/GiB")
    parts.append(f"Garage {fmt(lb['garage_cpu_per_gib'])} vs {fmt(direct['garage_cpu_per_gib'])} CPU-s/GiB "
                 f"({a.garage_nodes} node(s))")
    parts.append(f"{a.count}x{a.size / MIB:.0f}MiB, {cores} cores, PROXY v2 {'on' if a.proxy_protocol else 'off'}")
    print("scale: " + "; ".join(parts))
