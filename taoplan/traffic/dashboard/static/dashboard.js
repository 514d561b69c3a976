"use strict";
// The services table (polled every 1.5 s) and the cost view (on load, on a window change, every 30 s).
(() => {
  let windowName = "24h";

  // One row per workload: its service's link named by the instance key (chat, chat.1...); a
  // workload a rollout replaced says so: "replaced" while it still serves, "draining" after.
  function who(s) {
    const replica = s.replica || s.name;
    const link = TP.el("a", { href: "/ui/services/" + encodeURIComponent(s.name), text: replica });
    if (!s.draining && !s.retiring) return link;
    const mark = s.draining ? "draining" : "replaced";
    const title = s.draining ? "out of routing; finishing " + s.in_flight + " request(s)" : "serves until its successor is ready";
    return TP.el("span", {}, link, " ", TP.el("small", { class: "mark " + mark, title: title, text: mark }));
  }

  async function services() {
    const data = await TP.api("/ui/api/services");
    const err = document.getElementById("platform-error");
    err.hidden = !data.platform_error;
    err.textContent = data.platform_error ? "The platforms could not be asked: " + data.platform_error : "";
    TP.fill(document.getElementById("services"), data.services.map((s) => [
      who(s),
      s.kind === "server" ? s.arch + " (server)" : s.arch,
      s.platform,
      TP.badge(s.state, s.reason),
      s.host_url,
      s.job_id,
      TP.duration(s.uptime_s),
      s.time_to_ready_s === null || s.time_to_ready_s === undefined ? null : s.time_to_ready_s.toFixed(1) + " s",
      s.num_gpus,
    ]), "No services: run taoplan apply.");
    document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString();
  }

  function usage(u) {
    return [u.requests, u.errors, TP.ms(u.p50_ms), TP.ms(u.p95_ms), u.gpu_seconds.toFixed(1), TP.money(u.cost)];
  }

  async function cost() {
    const data = await TP.api("/ui/api/cost?window=" + encodeURIComponent(windowName));
    TP.fill(document.getElementById("cost-callers"), data.callers.map((c) => [c.caller, ...usage(c)]),
      "No requests in this window.");
    TP.fill(document.getElementById("cost-users"), data.end_users.map((c) => [c.caller, c.end_user, ...usage(c)]),
      "No requests in this window.");
    const note = document.getElementById("cost-note");
    const missing = data.unpriced;
    note.hidden = !missing.length;
    note.textContent = missing.length
      ? "No price for " + missing.join(", ") + ": add pricing: {" + missing[0] + ": {gpu_hour: N}} to services.yaml."
      : "";
  }

  document.querySelectorAll("[data-window]").forEach((button) => {
    button.addEventListener("click", () => {
      windowName = button.dataset.window;
      document.querySelectorAll("[data-window]").forEach((b) => b.setAttribute("aria-pressed", String(b === button)));
      cost().catch((e) => TP.banner(e.message));
    });
  });

  TP.onStart(() => {
    TP.poll(services, 1500);
    TP.poll(cost, 30000);
  });
})();
