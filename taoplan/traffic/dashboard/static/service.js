"use strict";
// One service: its row and the last hour (polled every 5 s), and the platform's log tail.
(() => {
  const name = TP.service;
  const base = "/ui/api/services/" + encodeURIComponent(name);

  function fact(label, value) {
    return [TP.el("dt", { text: label }), TP.el("dd", {}, value === null || value === undefined ? "–" : value)];
  }

  async function refresh() {
    const data = await TP.api(base);
    const s = data.service, a = data.activity;
    document.getElementById("facts").replaceChildren(
      ...fact("State", TP.badge(s.state, s.reason)),
      ...fact(s.kind === "server" ? "Server" : "Arch", s.arch),
      ...fact("Platform", s.platform),
      ...fact("Host URL", s.host_url),
      ...fact("Job id", s.job_id),
      ...fact("Uptime", TP.duration(s.uptime_s)),
      ...fact("Time to ready", s.time_to_ready_s === null || s.time_to_ready_s === undefined ? null : s.time_to_ready_s.toFixed(1) + " s"),
      ...fact("GPUs", String(s.num_gpus)),
      ...(data.replicas && data.replicas.length > 1
        ? fact("Workloads", data.replicas.map((r) => r.replica + " " + r.state + (r.draining ? " (draining)" : r.retiring ? " (replaced)" : "")).join(", "))
        : []),
    );
    document.getElementById("totals").textContent =
      a.requests + " requests, " + a.errors + " errors, p50 " + (TP.ms(a.p50_ms) || "–") + ", p95 " + (TP.ms(a.p95_ms) || "–");
    // The SVG is drawn by the gateway from numbers only (taoplan/traffic/dashboard/chart.py).
    document.getElementById("chart").innerHTML = a.chart;
    TP.fill(document.getElementById("errors"), a.errors_by_type.map((e) => [e.type, e.count]), "No errors.");
    TP.fill(document.getElementById("recent"), a.last.map((r) => [
      TP.time(r.time), r.caller,
      TP.el("span", { class: r.status === 200 ? "ok" : "bad", title: r.error_type || null,
                      text: String(r.status || "no answer") + (r.error_type ? " " + r.error_type : "") }),
      TP.ms(r.latency_ms),
    ]), "No requests in the last hour.");
  }

  async function logs() {
    const out = document.getElementById("logs");
    try {
      const data = await TP.api(base + "/logs?tail=200");
      out.textContent = data.lines.length ? data.lines.join("\n") : "(no log lines)";
      out.scrollTop = out.scrollHeight;
    } catch (e) {
      out.textContent = "Logs unavailable: " + e.message;
    }
  }

  document.getElementById("logs-refresh").addEventListener("click", logs);
  TP.onStart(() => {
    TP.poll(refresh, 5000);
    logs();
  });
})();
