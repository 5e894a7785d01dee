"""Helm's real engine (helm-python-sdk, libhelm) for the chart tests.

Reads a JSON list of requests from the file named by the first argument (or
stdin) and prints a JSON list of results:

  {"op": "render", "chart": DIR, "values": {...}, "name": "tapwire", "namespace": "tapwire"}
      -> {"ok": true, "manifests": {"tapwire/templates/x.yaml": "...", ...}}
  {"op": "lint", "chart": DIR, "values": {...}}
      -> {"ok": true, "lint": {"messages": [...], "errors": [...]}}

A Helm failure (schema violation, `fail` in a template) is a result, not a
crash: {"ok": false, "error_type": "HelmRenderError", "error": "..."}.
Used by crates/cli/tests/helm_chart.rs; needs `pip install helm-python-sdk`.
"""

import json
import sys

import helm_python as helm


def run(req):
    op = req["op"]
    values = req.get("values") or {}
    try:
        if op == "lint":
            report = helm.lint(req["chart"], values, namespace=req.get("namespace", "tapwire"))
            return {"ok": True, "lint": report}
        if op == "render":
            with helm.Chart.load(req["chart"]) as chart:
                manifests = chart.render(
                    values,
                    name=req.get("name", "tapwire"),
                    namespace=req.get("namespace", "tapwire"),
                    is_install=True,
                )
            return {"ok": True, "manifests": manifests}
        return {"ok": False, "error_type": "UsageError", "error": f"unknown op {op!r}"}
    except helm.HelmError as e:
        return {"ok": False, "error_type": type(e).__name__, "error": str(e)}


def main():
    if len(sys.argv) > 1:
        with open(sys.argv[1], encoding="utf-8") as f:
            requests = json.load(f)
    else:
        requests = json.load(sys.stdin)
    json.dump([run(r) for r in requests], sys.stdout)


if __name__ == "__main__":
    main()
