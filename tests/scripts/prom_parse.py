#!/usr/bin/env python3
"""Parses a /metrics body (stdin) with the Prometheus client library's own parsers, the text
format one and the strict OpenMetrics one, and prints every sample as JSON, for tests/admin.rs.
Exits 1 (printing the parser's complaint) if either parser refuses the text."""

import json
import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics
from prometheus_client.parser import text_string_to_metric_families as prometheus


def samples(parse, text):
    out = []
    for family in parse(text):
        for s in family.samples:
            out.append({"family": family.name, "type": family.type, "name": s.name,
                        "labels": s.labels, "value": s.value})
    return out


def main():
    text = sys.stdin.read()
    try:
        prom = samples(prometheus, text)
        om = samples(openmetrics, text)
    except Exception as e:  # the test shows what the parser said
        print(json.dumps({"error": f"{type(e).__name__}: {e}"}))
        sys.exit(1)
    print(json.dumps({"samples": prom, "openmetrics_samples": len(om)}))


if __name__ == "__main__":
    main()
